// Reads and edits the docs' table of preset images (software -> image path) in reStructuredText simple
// and grid tables and Markdown pipe tables. Pure: text (or bytes) in, text (or bytes) out. An edit touches only
// the edited row, unless a column must widen, and then only the lines of that one table; every other line keeps
// its bytes, invalid UTF-8 included. Keys and values are escaped for the table's syntax, and the result is read
// back before it is returned: docutils (or GitHub) reads exactly the text that was asked for, or nothing changes.
import {
  cellSource,
  columnCount,
  findTables,
  readCell,
  readHeader,
  readRow,
  rowCells,
  rowLine,
  splitPipes,
  tableOf,
  type ParsedTable,
  type Problem,
  type Syntax,
  type Table,
  type TableFormat,
} from './table-parse.js';
import { rstBlockStart, RST_LITERAL_MARKER } from './cell-text.js';
import { SIMPLE_BORDER, SPAN_LINE, type Block, type Cell, type ParsedRow } from './table-block.js';
import {
  colsEqual,
  colsText,
  concatCols,
  displayWidth,
  fillCols,
  isBlankCols,
  isCombining,
  EOLS,
  isPySpace,
  prepareLine,
  rstripCols,
  sliceCols,
  spliceCols,
  splitSourceBytes,
  splitSourceLines,
  toCols,
  units,
  type Cols,
  type SourceLines,
} from './text-width.js';

export { displayWidth } from './text-width.js';
export type { Table, TableFormat, Syntax } from './table-parse.js';

export interface TableEditSpec {
  key: string;
  value: string;
  /** Header names that identify the key column; the first one a table has wins. Default 软件, Software. */
  keyColumns?: string[];
  /** Header names that identify the value column. Default 位置, Location. */
  valueColumns?: string[];
  /** Which table syntaxes to look for; 'auto' (the default) finds both. */
  syntax?: Syntax;
  /** Names the document in error messages. */
  file?: string;
}

interface EditOutcome {
  operation: 'replaced' | 'appended' | 'unchanged';
  /** The value the row had before, when it was replaced (or unchanged), as it reads. */
  oldValue?: string;
  format: TableFormat;
  /** The edited table as it reads after the edit (read when first asked for). */
  readonly table: Table;
}

export interface TableEditResult extends EditOutcome {
  text: string;
}

export interface TableEditBytesResult extends EditOutcome {
  /** The document's new bytes: the input itself when unchanged. */
  bytes: Buffer;
}

/** An expected failure: the document or the request cannot be edited safely. The message says what to do. */
export class TableError extends Error {
  override name = 'TableError';
}

export const DEFAULT_KEY_COLUMNS = ['软件', 'Software'];
export const DEFAULT_VALUE_COLUMNS = ['位置', 'Location'];

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/** The document's lines, after a byte order mark (which stays in the output untouched). */
function linesOf(source: string | Uint8Array): SourceLines {
  if (typeof source === 'string') return splitSourceLines(source, source.startsWith('\uFEFF') ? 1 : 0);
  return splitSourceBytes(source, UTF8_BOM.every((b, i) => source[i] === b) ? 3 : 0);
}

/** Every table in the document, in order. Cells read as docutils or GitHub show them; multi-line cells keep '\n'. */
export function readTables(source: string | Uint8Array, options: { syntax?: Syntax } = {}): Table[] {
  return findTables(linesOf(source), options.syntax).tables.map(tableOf);
}

/**
 * Every non-empty value of the value column, in every table that has both columns, so retention never
 * deletes an image the docs list. A multi-line cell is given as read ('\n' between lines) and joined.
 */
export function listedValues(source: string | Uint8Array, spec: Pick<TableEditSpec, 'keyColumns' | 'valueColumns' | 'syntax'> = {}): string[] {
  const values = new Set<string>();
  for (const pt of findTables(linesOf(source), spec.syntax).tables) {
    const header = readHeader(pt);
    const k = columnIndex(header, spec.keyColumns ?? DEFAULT_KEY_COLUMNS);
    const v = columnIndex(header, spec.valueColumns ?? DEFAULT_VALUE_COLUMNS);
    if (k < 0 || v < 0 || k === v) continue;
    for (const row of pt.bodyRows) {
      const value = readCell(pt, row, v).text;
      if (value !== '') values.add(value);
      // A path wrapped over lines in a grid cell reads as words to docutils; keep the joined form too.
      if (value.includes('\n')) values.add(value.replace(/\n\s*/g, ''));
    }
  }
  return [...values];
}

const normalize = (s: string): string => s.trim().replace(/\s+/gu, ' ').toLowerCase();

function columnIndex(header: string[], names: string[]): number {
  for (const name of names) {
    const wanted = normalize(name);
    const index = header.findIndex((cell) => normalize(cell) === wanted || cell.split('\n').some((l) => normalize(l) === wanted));
    if (index >= 0) return index;
  }
  return -1;
}

/** Characters that would end a line for docutils (Python's splitlines) or be read differently once written. */
const BREAKING = /[\0-\x1f\x7f\x85\u2028\u2029\uFEFF]/u;

function checkText(what: string, text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') throw new TableError(`the ${what} is empty; give the ${what} to write into the table`);
  const bad = BREAKING.exec(trimmed);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new TableError(`the ${what} ${JSON.stringify(trimmed)} contains U+${code}, which would break the table's lines; give a single-line ${what}`);
  }
  if (/[\uD800-\uDFFF]/u.test(trimmed)) {
    throw new TableError(`the ${what} ${JSON.stringify(trimmed)} contains a lone UTF-16 surrogate, which has no UTF-8 form; give valid text`);
  }
  return trimmed;
}

// ---------------------------------------------------------------- escaping

const isWordChar = (ch: string | undefined): boolean => ch !== undefined && /^[\p{L}\p{N}]$/u.test(ch);

/**
 * Text docutils reads back as `text`: backslashes and the inline markup characters * ` | are escaped, and so is
 * an underscore that could end a reference (`name_`); a line that would start a list, comment, option, field or
 * transition gets its first character escaped, and a final '::' its last colon.
 */
export function escapeRst(text: string): string {
  const chars = [...text];
  let out = chars
    .map((ch, i) => {
      if (ch === '\\' || ch === '*' || ch === '`' || ch === '|') return `\\${ch}`;
      if (ch === '_' && !(isWordChar(chars[i - 1]) && isWordChar(chars[i + 1]))) return '\\_';
      return ch;
    })
    .join('');
  // A line of backslashes is a transition whatever is escaped; an escaped space in front reads as nothing.
  if (/^\\+$/.test(out)) out = `\\ ${out}`;
  else if (rstBlockStart(out)) out = `\\${out}`;
  if (RST_LITERAL_MARKER.test(out)) out = `${out.slice(0, -1)}\\:`;
  return out;
}

/**
 * Text a GitHub pipe table reads back as `text`: pipes as `\|`, a backslash doubled where it would escape what
 * follows, and the inline markup characters (emphasis, code, links, HTML, strikethrough, math, entities) escaped.
 */
export function escapeMarkdown(text: string): string {
  const chars = [...text];
  return chars
    .map((ch, i) => {
      const next = chars[i + 1];
      if (ch === '\\') return next === undefined || /^[!-/:-@[-`{-~]$/.test(next) ? '\\\\' : '\\';
      if ('|*`[<~$'.includes(ch)) return `\\${ch}`;
      if (ch === '_' && !(isWordChar(chars[i - 1]) && isWordChar(next))) return '\\_';
      if (ch === '&' && /^&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);/.test(chars.slice(i, i + 40).join(''))) return '\\&';
      return ch;
    })
    .join('');
}

// ---------------------------------------------------------------- the edit

/** A line of the edited table: a source line kept byte for byte (its index), or new text (standing for `from`). */
type NewLine = number | { text: string; from?: number };

/** The edited table's lines, made one at a time as they are written: a widened long table is many new lines. */
interface Rewrite {
  lines(): Iterable<NewLine>;
  /** How many units a line may grow by (the columns a widening adds), to size the output once. */
  growth: number;
}

interface Plan {
  operation: 'replaced' | 'appended';
  oldValue?: string;
  pt: ParsedTable;
  edit: Edit;
  rewrite: Rewrite;
}

export function editTable(text: string, spec: TableEditSpec): TableEditResult {
  const lines = linesOf(text);
  const plan = planEdit(lines, spec);
  if (plan.operation === 'unchanged') return outcome({ text }, plan, plan.pt);
  const sink = new TextSink(text);
  const written = writeEdit(lines, plan, sink);
  const out = sink.done();
  const after = verify(plan.edit, written, (from, to) => splitSourceLines(out, from, to), spec.syntax);
  return outcome({ text: out }, plan, after);
}

/**
 * editTable on the document's bytes: lines outside the edited ones are copied byte for byte, invalid UTF-8
 * included; a line that must be rewritten but is not valid UTF-8 is refused.
 */
export function editTableBytes(bytes: Uint8Array, spec: TableEditSpec): TableEditBytesResult {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lines = linesOf(buf);
  const plan = planEdit(lines, spec);
  if (plan.operation === 'unchanged') return outcome({ bytes: buf }, plan, plan.pt);
  const { pt } = plan;
  const tableLines = pt.end - pt.start + 1;
  const sink = new ByteSink(buf, buf.length + tableLines * plan.rewrite.growth + 4 * (lines.start[pt.end + 1] - lines.start[pt.end]) + 65536);
  const written = writeEdit(lines, plan, sink, (from) => {
    const text = lines.text(from);
    if (!text.includes('\uFFFD')) return;
    const end = lines.start[from + 1] - EOLS[lines.eol[from]].length;
    if (!Buffer.from(text, 'utf8').equals(buf.subarray(lines.start[from], end))) {
      throw new TableError(`line ${from + 1} of ${spec.file ?? 'the document'} is not valid UTF-8, and this edit would rewrite it; fix the file's encoding there first`);
    }
  });
  const out = sink.done();
  const after = verify(plan.edit, written, (from, to) => splitSourceBytes(out, from, to), spec.syntax);
  return outcome({ bytes: out }, plan, after);
}

function outcome<T extends object>(body: T, plan: Plan | Unchanged, read: ParsedTable): T & EditOutcome {
  let table: Table | undefined;
  const result = Object.assign(body, { operation: plan.operation, oldValue: plan.oldValue, format: plan.pt.format });
  // Read only when asked for: a caller that wants the text should not pay for every row of a long table.
  Object.defineProperty(result, 'table', { enumerable: true, get: (): Table => (table ??= tableOf(read)) });
  return result as T & EditOutcome;
}

/** Where the edited document is written: runs of the source copied, new text added. */
interface Sink {
  /** Units written so far. */
  readonly length: number;
  copy(from: number, to: number): void;
  write(text: string): void;
}

/** The new document as text; parts are joined as they pile up, so that a long table is not thousands of strings. */
class TextSink implements Sink {
  private readonly chunks: string[] = [];
  private parts: string[] = [];
  length = 0;
  constructor(private readonly source: string) {}
  copy(from: number, to: number): void {
    this.write(this.source.slice(from, to));
  }
  write(text: string): void {
    this.parts.push(text);
    this.length += text.length;
    if (this.parts.length < 4096) return;
    this.chunks.push(this.parts.join(''));
    this.parts = [];
  }
  done(): string {
    return this.chunks.join('') + this.parts.join('');
  }
}

/** The new document's bytes, written straight into one buffer, sized once from the plan (and grown if it must). */
class ByteSink implements Sink {
  private buf: Buffer;
  length = 0;
  constructor(
    private readonly source: Buffer,
    capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
  }
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.length + n, Math.ceil(this.buf.length * 1.25)));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
  copy(from: number, to: number): void {
    this.room(to - from);
    this.length += this.source.copy(this.buf, this.length, from, to);
  }
  write(text: string): void {
    this.room(text.length * 3 <= this.buf.length - this.length ? 0 : Buffer.byteLength(text));
    this.length += this.buf.write(text, this.length);
  }
  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Where the table was written: its first unit (the same in the source and the output), its end, its line count. */
interface Written {
  from: number;
  to: number;
  count: number;
  /** The output's offset of a source offset after the table. */
  shift: number;
}

/**
 * Writes the document with the table's new lines: everything else is copied from the source. A line keeps its own
 * ending; a new one takes the table's; the last takes what ended the table. `check` sees each rewritten source line.
 */
function writeEdit(lines: SourceLines, plan: Plan, sink: Sink, check?: (from: number) => void): Written {
  const { pt } = plan;
  const tableEol = EOLS[lines.eol[pt.start] || lines.eol.find((e) => e !== 0) || 1];
  const lastEol = EOLS[lines.eol[pt.end]];
  let run: [number, number] | undefined;
  const flush = (): void => {
    if (run && run[1] > run[0]) sink.copy(run[0], run[1]);
    run = undefined;
  };
  const take = (from: number, to: number): void => {
    if (run && run[1] === from) run[1] = to;
    else {
      flush();
      run = [from, to];
    }
  };
  const put = (text: string): void => {
    flush();
    sink.write(text);
  };
  const write = (line: NewLine, last: boolean): void => {
    if (typeof line === 'number') {
      const own = EOLS[lines.eol[line]];
      const eol = last ? lastEol : own || tableEol;
      if (eol === own) {
        take(lines.start[line], lines.start[line + 1]);
      } else {
        take(lines.start[line], lines.start[line + 1] - own.length);
        put(eol);
      }
      return;
    }
    if (line.from !== undefined) check?.(line.from);
    const own = line.from !== undefined ? EOLS[lines.eol[line.from]] : '';
    put(line.text);
    put(last ? lastEol : own || tableEol);
  };
  const from = lines.start[pt.start];
  take(0, from);
  let count = 0;
  let previous: NewLine | undefined;
  for (const line of plan.rewrite.lines()) {
    if (previous !== undefined) write(previous, false);
    previous = line;
    count++;
  }
  if (previous !== undefined) write(previous, true);
  flush();
  const to = sink.length;
  take(lines.start[pt.end + 1], lines.start[lines.length]);
  flush();
  return { from, to, count, shift: to - lines.start[pt.end + 1] };
}

interface Candidate {
  pt: ParsedTable;
  k: number;
  v: number;
}

interface Unchanged {
  operation: 'unchanged';
  oldValue?: string;
  pt: ParsedTable;
}

function planEdit(lines: SourceLines, spec: TableEditSpec): Plan | Unchanged {
  const key = checkText('key', spec.key);
  const value = checkText('value', spec.value);
  const keyNames = spec.keyColumns ?? DEFAULT_KEY_COLUMNS;
  const valueNames = spec.valueColumns ?? DEFAULT_VALUE_COLUMNS;
  const where = spec.file ?? 'the document';
  const { tables, problems } = findTables(lines, spec.syntax);

  const candidates: Candidate[] = [];
  for (const pt of tables) {
    const header = readHeader(pt);
    const k = columnIndex(header, keyNames);
    const v = columnIndex(header, valueNames);
    if (k >= 0 && v >= 0 && k !== v) candidates.push({ pt, k, v });
  }
  if (candidates.length === 0) throw new TableError(noTableMessage(tables, problems, keyNames, valueNames, where));

  // Keys compare as they read: `\*PyTorch\*` is the key *PyTorch*, and `*PyTorch*` (emphasis) is PyTorch.
  const wanted = normalize(key);
  const hits: { c: Candidate; row: number }[] = [];
  for (const c of candidates) {
    const rows: number[] = [];
    for (let i = 0; i < c.pt.bodyRows.length; i++) {
      if (normalize(readCell(c.pt, c.pt.bodyRows.row(i), c.k).text) === wanted) rows.push(i);
    }
    if (rows.length > 1) {
      throw new TableError(
        `the table at line ${c.pt.startLine} of ${where} lists ${key} ${rows.length} times (lines ${rows.map((i) => rowLine(c.pt, c.pt.bodyRows.row(i))).join(', ')}); remove the duplicates by hand first`,
      );
    }
    if (rows.length === 1) hits.push({ c, row: rows[0] });
  }
  if (hits.length > 1) {
    throw new TableError(`${key} is listed in ${hits.length} tables of ${where} (lines ${hits.map((h) => h.c.pt.startLine).join(', ')}); keep it in one table only`);
  }
  if (hits.length === 0 && candidates.length > 1) {
    throw new TableError(
      `${candidates.length} tables in ${where} have columns ${keyNames[0]} and ${valueNames[0]} (lines ${candidates.map((c) => c.pt.startLine).join(', ')}) and none lists ${key}; add its row by hand to the right one`,
    );
  }
  const target = hits[0]?.c ?? candidates[0];
  const row = hits.length === 1 ? hits[0].row : null;
  const { pt } = target;
  const oldValue = row === null ? undefined : readCell(pt, pt.bodyRows.row(row), target.v).text;
  if (oldValue === value) return { operation: 'unchanged', oldValue, pt };

  const escape = pt.format === 'markdown' ? escapeMarkdown : escapeRst;
  const edit: Edit = { pt, source: lines, k: target.k, v: target.v, key, value, keySource: escape(key), valueSource: escape(value), row, where };
  refuseMisreadMarks(edit);
  const rewrite = pt.format === 'rst-simple' ? editSimple(edit) : pt.format === 'rst-grid' ? editGrid(edit) : editMarkdown(edit);
  return { operation: row === null ? 'appended' : 'replaced', oldValue, pt, edit, rewrite };
}

/**
 * docutils 0.19 slices grid cells, and every line after the first of a simple-table row, by code points
 * rather than columns once a combining character appears, so it would misread such a row; refuse it.
 */
function refuseMisreadMarks(edit: Edit): void {
  const { pt, row } = edit;
  if (pt.format === 'markdown') return;
  const texts = row === null ? [edit.keySource, edit.valueSource] : [edit.valueSource];
  const mark = texts.join('').match(/\p{M}/gu)?.find((ch) => isCombining(ch.codePointAt(0)!));
  if (mark === undefined) return;
  const r = row === null ? undefined : pt.bodyRows.row(row);
  let multiLine = false;
  for (let i = r ? r.first + 1 : 0; r && i < r.first + r.count; i++) multiLine ||= !isBlankCols(pt.block.line(i));
  if (pt.format === 'rst-simple' && !multiLine) return;
  const code = mark.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  const place = pt.format === 'rst-grid' ? 'a grid table' : 'a simple-table row that spans several lines';
  throw new TableError(
    `the text contains the combining character U+${code}, which docutils misreads in ${place} (table at line ${pt.startLine} of ${edit.where}); write it precomposed (NFC) or edit the row by hand`,
  );
}

function noTableMessage(tables: ParsedTable[], problems: Problem[], keyNames: string[], valueNames: string[], where: string): string {
  const keyName = keyNames.join('/');
  const valueName = valueNames.join('/');
  const headers = tables.map((t) => ({ t, header: readHeader(t) }));
  const partial = headers.find(({ header }) => (columnIndex(header, keyNames) >= 0) !== (columnIndex(header, valueNames) >= 0));
  let message: string;
  if (partial) {
    const missing = columnIndex(partial.header, keyNames) >= 0 ? valueName : keyName;
    message = `the table at line ${partial.t.startLine} of ${where} has no column ${missing} (its columns: ${partial.header.join(' | ')}); name the column to use`;
  } else {
    const found = headers.map(({ t, header }) => `line ${t.startLine}: ${header.some((h) => h !== '') ? header.join(' | ') : '(no header row)'}`);
    message = `no table with columns ${keyName} and ${valueName} in ${where} (${found.length ? `found tables with headers: ${found.join('; ')}` : 'found no tables'})`;
  }
  if (problems.length > 0) message += `; docutils would also reject: ${problems.map((p) => `line ${p.line}: ${p.message.replace(/\s+/g, ' ')}`).join('; ')}`;
  return message;
}

/**
 * Reads the edited table back from the written document (its new lines, and the lines after it up to a blank one,
 * which decide where a table ends) and checks it says exactly what was intended: the same header, every other row
 * as it read before, and the edited row's key and value as plain text equal to what was asked for. `linesOf` gives
 * the output's lines in a range of it.
 */
function verify(edit: Edit, written: Written, linesOf: (from: number, to: number) => SourceLines, syntax: Syntax | undefined): ParsedTable {
  const { pt, source, k, v, key, value, row } = edit;
  let end = pt.end + 1;
  while (end < source.length && prepareLine(source.text(end)) !== '') end++;
  const to = source.start[Math.min(end + 1, source.length)] + written.shift;
  const after = findTables(linesOf(written.from, to), syntax, pt.startLine).tables.find((t) => t.start === 0);
  const fail = (why: string): never => {
    throw new TableError(
      `cannot edit the table at line ${pt.startLine} of ${edit.where} safely (${why}); edit the row for ${key} by hand`,
    );
  };
  if (!after || after.format !== pt.format || after.end !== written.count - 1) return fail('its layout would not read back as a table of the same extent');
  if (columnCount(after) !== columnCount(pt) || JSON.stringify(readHeader(after)) !== JSON.stringify(readHeader(pt))) return fail('its header would read differently');
  const expectedRows = pt.bodyRows.length + (row === null ? 1 : 0);
  if (after.bodyRows.length !== expectedRows) return fail(`it would read as ${after.bodyRows.length} rows instead of ${expectedRows}`);
  const edited = row ?? pt.bodyRows.length;
  const sameColumns = JSON.stringify(after.columns) === JSON.stringify(pt.columns);
  for (let r = 0; r < expectedRows; r++) {
    const now = after.bodyRows.row(r);
    const before = r < pt.bodyRows.length ? pt.bodyRows.row(r) : undefined;
    if (r !== edited) {
      if (sameColumns && sameSource(pt, before!, after, now)) continue;
      if (!sameReading(pt, before!, after, now)) return fail(`the row at line ${rowLine(after, now)} would read differently`);
      continue;
    }
    const cells = readRow(after, now);
    const expected = before ? readRow(pt, before).map((t, c) => (c === v ? value : t)) : cells.map((_, c) => (c === k ? key : c === v ? value : ''));
    const written = readCell(after, now, v);
    const keyCell = readCell(after, now, k);
    if (!written.plain || written.text !== value) {
      return fail(`the value would read as ${JSON.stringify(written.text)}${written.plain ? '' : ' with markup'} instead of ${JSON.stringify(value)}`);
    }
    if (!before && (!keyCell.plain || keyCell.text !== key)) {
      return fail(`the key would read as ${JSON.stringify(keyCell.text)}${keyCell.plain ? '' : ' with markup'} instead of ${JSON.stringify(key)}`);
    }
    if (JSON.stringify(cells) !== JSON.stringify(expected)) return fail('the edited row would read differently in its other cells');
  }
  return after;
}

/** Whether two rows read the same: cell by cell, reading only the cells whose text was cut differently. */
function sameReading(a: ParsedTable, ra: ParsedRow, b: ParsedTable, rb: ParsedRow): boolean {
  for (let c = 0, width = columnCount(a); c < width; c++) {
    const [sa, sb] = [cellSource(a, ra, c), cellSource(b, rb, c)];
    if (sa.length === sb.length && sa.every((line, i) => line === sb[i])) continue;
    if (readCell(a, ra, c).text !== readCell(b, rb, c).text) return false;
  }
  return true;
}

/** Whether two rows are cut from the same text in the same way, so that they read the same without reading them. */
function sameSource(a: ParsedTable, ra: ParsedRow, b: ParsedTable, rb: ParsedRow): boolean {
  if (a.format === 'markdown') return a.source.text(a.start + ra.first) === b.source.text(b.start + rb.first);
  if (ra.first !== rb.first || ra.count !== rb.count) return false;
  for (let i = ra.first; i < ra.first + ra.count; i++) if (!colsEqual(a.block.line(i), b.block.line(i))) return false;
  if (ra.columns || rb.columns) return JSON.stringify(ra.columns) === JSON.stringify(rb.columns);
  const ca = ra.cells ?? [];
  const cb = rb.cells ?? [];
  return ca.length === cb.length && ca.every((x, i) => {
    const y = cb[i];
    return x === null || y === null ? x === y : x.top === y.top && x.left === y.left && x.bottom === y.bottom && x.right === y.right && x.morerows === y.morerows && x.morecols === y.morecols;
  });
}

interface Edit {
  pt: ParsedTable;
  source: SourceLines;
  k: number;
  v: number;
  /** What the key and value must read as; and the text written for them (escaped). */
  key: string;
  value: string;
  keySource: string;
  valueSource: string;
  row: number | null;
  where: string;
}

/**
 * The table's lines while they are edited, without a copy of them: changes made to every line (widenings) are
 * kept as functions applied when a line is read; lines of the edited row are set outright, dropped, or inserted.
 */
class Work {
  readonly rewrites: ((cols: Cols, i: number) => Cols)[] = [];
  readonly set = new Map<number, Cols>();
  readonly dropped = new Set<number>();
  /** New lines, each before block line `before` (the block's length: after the last). */
  readonly inserts: { before: number; cols: Cols }[] = [];
  /** Columns the widenings added to a line, at most. */
  growth = 0;
  constructor(readonly block: Block) {}
  line(i: number): Cols {
    const set = this.set.get(i);
    if (set !== undefined) return set;
    let cols = this.block.line(i);
    for (const rewrite of this.rewrites) cols = rewrite(cols, i);
    return cols;
  }
}

/** The table's lines from the work: untouched lines are kept as they are (their index in the source). */
function emit(edit: Edit, work: Work): Rewrite {
  const { pt } = edit;
  const text = (cols: Cols): string => pt.indent + colsText(rstripCols(cols));
  function* lines(): Generator<NewLine> {
    for (let i = 0; i <= work.block.length; i++) {
      for (const insert of work.inserts) if (insert.before === i) yield { text: text(insert.cols) };
      if (i === work.block.length) return;
      if (work.dropped.has(i)) continue;
      const cols = work.line(i);
      yield colsEqual(pt.block.line(i), cols) ? pt.start + i : { text: text(cols), from: pt.start + i };
    }
  }
  return { lines, growth: work.growth };
}

function checkSpan(edit: Edit, row: ParsedRow, column: number): Cell {
  const cell = rowCells(edit.pt, row)[column];
  if (!cell || cell.morecols > 0 || cell.morerows > 0) {
    throw new TableError(`the row for ${edit.key} at line ${rowLine(edit.pt, row)} of ${edit.where} has a cell spanning several columns or rows; edit it by hand`);
  }
  return cell;
}

/** `text` written over the columns from `at` on, the line padded with spaces to reach them. */
function writeAt(cols: Cols, at: number, text: Cols): Cols {
  return spliceCols(cols, at, at + units(text).length, text);
}

/** Columns [from, to) of the line blanked (as far as the line reaches). */
function blank(cols: Cols, from: number, to: number): Cols {
  const end = Math.min(to, units(cols).length);
  return end <= from ? cols : spliceCols(cols, from, end, fillCols(end - from, ' '));
}

// ---------------------------------------------------------------- RST simple tables

function editSimple(edit: Edit): Rewrite {
  const { pt, k, v, keySource, valueSource, row } = edit;
  const work = new Work(pt.block);
  let columns = pt.columns.map((c) => [...c] as [number, number]);
  const last = columns.length - 1;
  // Rows under a span line have their own column spec (by the row's first line); a widening shifts those too.
  const rowOf = new Map<number, number>();
  let specs = new Map<number, [number, number][]>();
  for (const rows of [pt.headRows, pt.bodyRows]) {
    for (const r of rows) {
      if (!r.columns) continue;
      specs.set(r.first, r.columns.map((c) => [...c] as [number, number]));
      for (let i = r.first; i < r.first + r.count; i++) rowOf.set(i, r.first);
    }
  }

  const widen = (c: number, extra: number): void => {
    const oldEnd = columns[c][1];
    const start = columns[c][0];
    // The specs as they are now: the rewrite runs when a line is written, after the shifts below.
    const [columnsNow, specsNow] = [columns, specs];
    work.rewrites.push((cols, i) => {
      const s = units(cols);
      if (SIMPLE_BORDER.test(s) || SPAN_LINE.test(s)) {
        return c === last ? concatCols(cols, fillCols(extra, s[s.length - 1])) : spliceCols(cols, oldEnd, oldEnd, fillCols(extra, s[oldEnd - 1]));
      }
      if (c === last) return cols;
      const own = rowOf.get(i);
      const spec = own === undefined ? columnsNow : specsNow.get(own)!;
      const seg = spec.find(([a, b]) => a <= start && b >= oldEnd);
      if (seg && seg === spec[spec.length - 1] && seg[1] !== oldEnd) return cols; // merged into the unbounded last column
      const at = seg ? seg[1] : oldEnd;
      return s.length > at ? spliceCols(cols, at, at, fillCols(extra, ' ')) : cols;
    });
    work.growth += extra;
    const shift = ([a, b]: [number, number]): [number, number] => [a >= oldEnd ? a + extra : a, b >= oldEnd ? b + extra : b];
    columns = columns.map(shift);
    specs = new Map([...specs].map(([first, spec]) => [first, spec.map(shift)]));
  };
  const ensure = (c: number, text: string): void => {
    const need = displayWidth(text) - (columns[c][1] - columns[c][0]);
    if (need > 0) widen(c, need);
  };

  ensure(v, valueSource);
  if (row === null) ensure(k, keySource);

  if (row !== null) {
    const r = pt.bodyRows.row(row);
    checkSpan(edit, r, v);
    const [s, e] = columns[v];
    for (let i = r.first; i < r.first + r.count; i++) {
      const now = work.line(i);
      let cols = v === last ? sliceCols(now, 0, s) : blank(now, s, e);
      if (i === r.first) cols = writeAt(cols, s, toCols(valueSource));
      cols = rstripCols(cols);
      work.set.set(i, cols);
      if (i !== r.first && !isBlankCols(now) && units(cols).length === 0) work.dropped.add(i);
    }
    return emit(edit, work);
  }

  let cols = writeAt('', columns[k][0], toCols(keySource));
  cols = rstripCols(writeAt(cols, columns[v][0], toCols(valueSource)));
  if (isBlankCols(cols, columns[0][0], columns[0][1])) {
    throw new TableError(`cannot append ${edit.key} to the simple table at line ${pt.startLine} of ${edit.where}: its first column would be empty; add the row by hand`);
  }
  if (SIMPLE_BORDER.test(units(cols)) || SPAN_LINE.test(units(cols))) {
    throw new TableError(`the row for ${edit.key} would read as a table border; give a different key or value`);
  }
  work.inserts.push({ before: pt.block.length - 1, cols });
  return emit(edit, work);
}

// ---------------------------------------------------------------- RST grid tables

function editGrid(edit: Edit): Rewrite {
  const { pt, k, v, keySource, valueSource, row } = edit;
  const work = new Work(pt.block);
  const grid = pt.grid!;
  const bounds = [pt.columns[0][0], ...pt.columns.map((c) => c[1])];
  // A widening inserts columns at a boundary; a cell's column after the widenings so far:
  const shifts: [number, number][] = [];
  const at = (column: number): number => shifts.reduce((x, [p, extra]) => (x >= p ? x + extra : x), column);

  const widen = (c: number, extra: number): void => {
    const p = bounds[c + 1];
    // Inside a cell spanning across p a line grows before that cell's right border; on the border lines of
    // the cell holding column p - 1 it grows with that border's character, elsewhere with spaces.
    const spanRight = new Map<number, number>();
    const border = new Uint8Array(pt.block.length);
    for (let n = 0; n < grid.top.length; n++) {
      const left = at(grid.left[n]);
      const right = at(grid.right[n]);
      if (left < p && p < right) for (let i = grid.top[n] + 1; i < grid.bottom[n]; i++) spanRight.set(i, right);
      if (left < p - 1 && p - 1 < right) border[grid.top[n]] = border[grid.bottom[n]] = 1;
    }
    work.rewrites.push((cols, i) => {
      const right = spanRight.get(i);
      const where = right ?? p;
      return spliceCols(cols, where, where, fillCols(extra, right === undefined && border[i] ? units(cols)[p - 1] : ' '));
    });
    work.growth += extra;
    shifts.push([p, extra]);
    for (let b = c + 1; b < bounds.length; b++) bounds[b] += extra;
  };
  const ensure = (c: number, text: string): void => {
    const need = displayWidth(text) + 2 - (bounds[c + 1] - bounds[c] - 1);
    if (need > 0) widen(c, need);
  };

  ensure(v, valueSource);
  if (row === null) ensure(k, keySource);

  if (row !== null) {
    const r = pt.bodyRows.row(row);
    const cell = checkSpan(edit, r, v);
    const [left, right] = [at(cell.left), at(cell.right)];
    for (let i = cell.top + 1; i < cell.bottom; i++) {
      let cols = blank(work.line(i), left + 1, right);
      if (i === cell.top + 1) cols = writeAt(cols, left + 2, toCols(valueSource));
      work.set.set(i, cols);
    }
    // Lines of the row left blank in every cell (the old value was longer) go, when no cell spans rows there.
    const own = (r.cells ?? []).filter((c): c is Cell => c !== null);
    const simpleRow = own.every((c) => c.morerows === 0) && own.reduce((n, c) => n + c.morecols + 1, 0) === bounds.length - 1;
    if (simpleRow) {
      const oldBounds = new Set([pt.columns[0][0], ...pt.columns.map((c) => c[1])]);
      const newBounds = new Set(bounds);
      const interiorBlank = (cols: Cols, except: Set<number>): boolean => {
        const s = units(cols);
        for (let j = 0; j < s.length; j++) if (!except.has(j) && !isPySpace(s[j])) return false;
        return true;
      };
      for (let i = cell.top + 2; i < cell.bottom; i++) {
        if (interiorBlank(work.line(i), newBounds) && !interiorBlank(pt.block.line(i), oldBounds)) work.dropped.add(i);
      }
    }
    return emit(edit, work);
  }

  const rowParts: Cols[] = ['|'];
  const sepParts: Cols[] = ['+'];
  for (let c = 0; c + 1 < bounds.length; c++) {
    const width = bounds[c + 1] - bounds[c] - 1;
    const text = c === k ? keySource : c === v ? valueSource : '';
    const content = toCols(text === '' ? '' : ` ${text}`);
    rowParts.push(content, fillCols(width - units(content).length, ' '), '|');
    sepParts.push(fillCols(width, '-'), '+');
  }
  const sep = concatCols(...sepParts);
  const bottom = pt.block.length - 1;
  const bottomLine = units(work.line(bottom));
  if (bounds.some((b) => bottomLine[b] !== '+')) work.set.set(bottom, sep);
  work.inserts.push({ before: pt.block.length, cols: concatCols(...rowParts) }, { before: pt.block.length, cols: sep });
  return emit(edit, work);
}

// ---------------------------------------------------------------- Markdown pipe tables

/** A row line must not start what GitHub would read as another block (a list, a quote, a heading...). */
const MD_BLOCK_START = /^(?:[-+*>#=~`<]|\d|\s{4})/;

function editMarkdown(edit: Edit): Rewrite {
  const { pt, k, v, keySource, valueSource, row } = edit;
  const count = pt.end - pt.start + 1;
  const lineAt = (i: number): string => edit.source.text(pt.start + i);
  const width = columnCount(pt);
  const { leading, trailing } = splitPipes(lineAt(0));
  const pipePositions = (line: string): number[] => {
    const s = units(toCols(prepareLine(line)));
    const at: number[] = [];
    for (let i = s.indexOf('|'); i >= 0; i = s.indexOf('|', i + 1)) if (s[i - 1] !== '\\') at.push(i);
    return at;
  };
  // Aligned: every line starts with a pipe and has its pipes in the header's columns.
  const first = pipePositions(lineAt(0));
  let aligned = leading && trailing && first.length === width + 1;
  for (let i = 0; aligned && i < count; i++) {
    const p = pipePositions(lineAt(i));
    aligned = lineAt(i).startsWith('|') && p.length === first.length && p.every((x, j) => x === first[j]);
  }
  const cellsOf = (index: number): string[] => {
    const cells = splitPipes(lineAt(index)).cells.slice(0, width).map((c) => c.trim());
    while (cells.length < width) cells.push('');
    return cells;
  };
  const newCells =
    row === null
      ? Array.from({ length: width }, (_, c) => (c === k ? keySource : c === v ? valueSource : ''))
      : cellsOf(row + 2).map((c, i) => (i === v ? valueSource : c));

  // Without a leading pipe an empty first cell would vanish (a leading pipe is only a border), and a first cell
  // that starts a list or a quote would end the table; add one then.
  const plain = (cells: string[]): string =>
    (leading || cells[0] === '' || MD_BLOCK_START.test(cells[0]) ? '| ' : '') + cells.join(' | ').trimEnd() + (trailing ? ' |' : '');
  // Every line made by `line` (a source line kept by default), and the edited row's text in its place or after them.
  const rewrite = (text: string, line: (i: number) => NewLine = (i) => pt.start + i, growth = 0): Rewrite => ({
    *lines() {
      for (let i = 0; i < count; i++) yield row !== null && i === row + 2 ? { text, from: pt.start + i } : line(i);
      if (row === null) yield { text };
    },
    growth,
  });
  if (!aligned) return rewrite(plain(newCells));

  const widths = first.slice(1).map((p, i) => p - first[i] - 1);
  const need = newCells.map((c) => displayWidth(c) + 2);
  const padded = (cells: string[], w: number[]): string =>
    '|' + cells.map((c, i) => ` ${c}${' '.repeat(Math.max(0, w[i] - 1 - displayWidth(c)))}`).join('|') + '|';
  if (need.every((n, i) => n <= widths[i])) return rewrite(padded(newCells, widths));
  const w2 = widths.map((w, i) => Math.max(w, need[i]));
  const delimiter = (): string => {
    const cells = splitPipes(lineAt(1)).cells.slice(0, width);
    return (
      '|' +
      cells
        .map((c, i) => {
          const t = c.trim();
          const spaced = c.startsWith(' ');
          const n = spaced ? w2[i] - 2 : w2[i];
          const dashes = (t.startsWith(':') ? ':' : '-') + '-'.repeat(Math.max(0, n - 2)) + (t.endsWith(':') ? ':' : '-');
          return spaced ? ` ${dashes} ` : dashes;
        })
        .join('|') +
      '|'
    );
  };
  const growth = w2.reduce((n, w, i) => n + w - widths[i], 0);
  return rewrite(padded(newCells, w2), (i) => ({ text: i === 1 ? delimiter() : padded(cellsOf(i), w2), from: pt.start + i }), growth);
}

