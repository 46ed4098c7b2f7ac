// Reads and edits the docs' table of preset images (software -> image path) in reStructuredText simple
// and grid tables and Markdown pipe tables. Pure: text (or bytes) in, text (or bytes) out. An edit touches only
// the edited row, unless a column must widen, and then only the lines of that one table; every other line keeps
// its bytes, invalid UTF-8 included. Keys and values are escaped for the table's syntax, and the result is read
// back before it is returned: docutils (or GitHub) reads exactly the text that was asked for, or nothing changes.
// Here: finding the row and checking the result; the new lines are made in table-rewrite.ts, written by table-write.ts.
import { cellSource, columnCount, findTables, readCell, readHeader, readRow, rowLine, tableOf, type ParsedTable, type Problem, type Syntax, type Table, type TableFormat } from './table-parse.js';
import { editGrid, editMarkdown, editSimple, escapeMarkdown, escapeRst, TableError, type Edit, type Rewrite } from './table-rewrite.js';
import { ByteSink, TextSink, writeEdit, type Written } from './table-write.js';
import type { ParsedRow } from './table-block.js';
import { colsEqual, EOLS, isBlankCols, isCombining, prepareLine, splitSourceBytes, splitSourceLines, type SourceLines } from './text-width.js';

export { displayWidth } from './text-width.js';
export type { Table, TableFormat, Syntax } from './table-parse.js';

/** A docs file's table syntax, by its extension: Markdown, or reStructuredText otherwise. */
export function syntaxOf(file: string): Syntax {
  return /\.(md|markdown|mdown|mkd)$/i.test(file) ? 'markdown' : 'rst';
}

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

export { escapeMarkdown, escapeRst, TableError } from './table-rewrite.js';

export const DEFAULT_KEY_COLUMNS = ['软件', 'Software'];
export const DEFAULT_VALUE_COLUMNS = ['位置', 'Location'];

/**
 * The header names to look for, from the columns a user named (or none): a default name brings its English
 * twin (the centre's tables are in Chinese, their English copies in English), any other name stands alone. The
 * pipeline and the `table` command both ask here, so an explicit `软件` means the same in both.
 */
export function tableColumns(keyColumn: string | undefined, valueColumn: string | undefined): { keyColumns: string[]; valueColumns: string[] } {
  const pick = (named: string | undefined, defaults: string[]) => (named === undefined || named === defaults[0] ? defaults : [named]);
  return { keyColumns: pick(keyColumn, DEFAULT_KEY_COLUMNS), valueColumns: pick(valueColumn, DEFAULT_VALUE_COLUMNS) };
}

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

// ---------------------------------------------------------------- the edit

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
  const written = writeEdit(lines, plan.pt, plan.rewrite, sink);
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
  // Sized for the widening and the new row's text; it grows in the rare case that is not enough.
  const tableLines = pt.end - pt.start + 1;
  const sink = new ByteSink(buf, buf.length + tableLines * plan.rewrite.growth + 4 * (lines.start[pt.end + 1] - lines.start[pt.end]) + 65536);
  const written = writeEdit(lines, pt, plan.rewrite, sink, (from) => {
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

