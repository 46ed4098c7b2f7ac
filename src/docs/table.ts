// Reads and edits the docs' table of preset images (software -> image path) in reStructuredText simple
// and grid tables and Markdown pipe tables. Pure: text in, text out. An edit touches only the edited row,
// unless a column must widen, and then only the lines of that one table; docutils reads the result.
import {
  findTables,
  splitPipes,
  type Cell,
  type ParsedRow,
  type ParsedTable,
  type Problem,
  type Syntax,
  type Table,
  type TableFormat,
} from './table-parse.js';
import { colsText, displayWidth, isBlankCols, isCombining, prepareLine, rstripCols, splitSourceLines, toCols, type Cols } from './text-width.js';

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

export interface TableEditResult {
  text: string;
  operation: 'replaced' | 'appended' | 'unchanged';
  /** The value the row had before, when it was replaced (or unchanged). */
  oldValue?: string;
  format: TableFormat;
  /** The edited table as it reads after the edit. */
  table: Table;
}

/** An expected failure: the document or the request cannot be edited safely. The message says what to do. */
export class TableError extends Error {
  override name = 'TableError';
}

export const DEFAULT_KEY_COLUMNS = ['软件', 'Software'];
export const DEFAULT_VALUE_COLUMNS = ['位置', 'Location'];

const BOM = '\uFEFF';

/** Every table in the document, in order. Cells are trimmed; multi-line cells keep their lines joined with '\n'. */
export function readTables(text: string, options: { syntax?: Syntax } = {}): Table[] {
  return findTables(splitSourceLines(stripBom(text)), options.syntax).tables.map((t) => t.table);
}

/**
 * Every non-empty value of the value column, in every table that has both columns, so retention never
 * deletes an image the docs list. A multi-line cell is given as read ('\n' between lines) and joined.
 */
export function listedValues(text: string, spec: Pick<TableEditSpec, 'keyColumns' | 'valueColumns' | 'syntax'> = {}): string[] {
  const values: string[] = [];
  for (const table of readTables(text, { syntax: spec.syntax })) {
    const k = columnIndex(table.header, spec.keyColumns ?? DEFAULT_KEY_COLUMNS);
    const v = columnIndex(table.header, spec.valueColumns ?? DEFAULT_VALUE_COLUMNS);
    if (k < 0 || v < 0 || k === v) continue;
    for (const row of table.rows) {
      const value = row.cells[v];
      // A path wrapped over lines in a grid cell reads as words to docutils; keep the joined form too.
      const forms = value.includes('\n') ? [value, value.replace(/\n\s*/g, '')] : [value];
      for (const form of forms) if (form !== '' && !values.includes(form)) values.push(form);
    }
  }
  return values;
}

function stripBom(text: string): string {
  return text.startsWith(BOM) ? text.slice(1) : text;
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

function checkText(what: string, text: string, format?: TableFormat): string {
  const trimmed = text.trim();
  if (trimmed === '') throw new TableError(`the ${what} is empty; give the ${what} to write into the table`);
  const bad = BREAKING.exec(trimmed);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new TableError(`the ${what} ${JSON.stringify(trimmed)} contains U+${code}, which would break the table's lines; give a single-line ${what}`);
  }
  if (format && format !== 'rst-simple' && trimmed.includes('|')) {
    throw new TableError(`the ${what} ${JSON.stringify(trimmed)} contains '|', which would split a cell of the ${format} table; give a ${what} without '|'`);
  }
  return trimmed;
}

interface NewLine {
  text: string;
  /** Index of the source line this one stands for (keeps its line ending), if any. */
  from?: number;
}

export function editTable(text: string, spec: TableEditSpec): TableEditResult {
  const bom = text.startsWith(BOM) ? BOM : '';
  const lines = splitSourceLines(text.slice(bom.length));
  const { tables, problems } = findTables(lines, spec.syntax);
  const keyNames = spec.keyColumns ?? DEFAULT_KEY_COLUMNS;
  const valueNames = spec.valueColumns ?? DEFAULT_VALUE_COLUMNS;
  const where = spec.file ?? 'the document';
  const key = checkText('key', spec.key);
  checkText('value', spec.value);

  const candidates = tables
    .map((t) => ({ t, k: columnIndex(t.table.header, keyNames), v: columnIndex(t.table.header, valueNames) }))
    .filter((c) => c.k >= 0 && c.v >= 0 && c.k !== c.v);
  if (candidates.length === 0) throw new TableError(noTableMessage(tables, problems, keyNames, valueNames, where));

  const wanted = normalize(key);
  const hits: { c: (typeof candidates)[number]; row: number }[] = [];
  for (const c of candidates) {
    const rows = c.t.table.rows.map((r, i) => ({ r, i })).filter(({ r }) => normalize(r.cells[c.k]) === wanted);
    if (rows.length > 1) {
      throw new TableError(
        `the table at line ${c.t.table.startLine} of ${where} lists ${key} ${rows.length} times (lines ${rows.map(({ r }) => r.line).join(', ')}); remove the duplicates by hand first`,
      );
    }
    if (rows.length === 1) hits.push({ c, row: rows[0].i });
  }
  if (hits.length > 1) {
    throw new TableError(`${key} is listed in ${hits.length} tables of ${where} (lines ${hits.map((h) => h.c.t.table.startLine).join(', ')}); keep it in one table only`);
  }
  if (hits.length === 0 && candidates.length > 1) {
    throw new TableError(
      `${candidates.length} tables in ${where} have columns ${keyNames[0]} and ${valueNames[0]} (lines ${candidates.map((c) => c.t.table.startLine).join(', ')}) and none lists ${key}; add its row by hand to the right one`,
    );
  }
  const target = hits[0]?.c ?? candidates[0];
  const rowIndex = hits.length === 1 ? hits[0].row : null;
  const pt = target.t;
  const format = pt.table.format;
  const value = checkText('value', spec.value, format);
  if (format !== 'rst-simple') checkText('key', spec.key, format);

  const oldValue = rowIndex === null ? undefined : pt.table.rows[rowIndex].cells[target.v];
  if (oldValue === value) return { text, operation: 'unchanged', oldValue, format, table: pt.table };
  refuseMisreadMarks(pt, rowIndex, rowIndex === null ? [key, value] : [value], where);

  const edit: Edit = { pt, lines, k: target.k, v: target.v, key, value, row: rowIndex, where, syntax: spec.syntax };
  const newLines = format === 'rst-simple' ? editSimple(edit) : format === 'rst-grid' ? editGrid(edit) : editMarkdown(edit);
  const out = assemble(lines, pt.start, pt.end, newLines);
  const result = bom + out;
  const table = verify(result, edit);
  return { text: result, operation: rowIndex === null ? 'appended' : 'replaced', oldValue, format, table };
}

/**
 * docutils 0.19 slices grid cells, and every line after the first of a simple-table row, by code points
 * rather than columns once a combining character appears, so it would misread such a row; refuse it.
 */
function refuseMisreadMarks(pt: ParsedTable, rowIndex: number | null, texts: string[], where: string): void {
  if (pt.table.format === 'markdown') return;
  const mark = texts.join('').match(/\p{M}/gu)?.find((ch) => isCombining(ch.codePointAt(0)!));
  if (mark === undefined) return;
  const row = rowIndex === null ? undefined : pt.bodyRows[rowIndex];
  const multiLine = row !== undefined && pt.block.slice(row.first + 1, row.first + row.count).some((line) => !isBlankCols(line));
  if (pt.table.format === 'rst-simple' && !multiLine) return;
  const code = mark.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  const place = pt.table.format === 'rst-grid' ? 'a grid table' : 'a simple-table row that spans several lines';
  throw new TableError(
    `the text contains the combining character U+${code}, which docutils misreads in ${place} (table at line ${pt.table.startLine} of ${where}); write it precomposed (NFC) or edit the row by hand`,
  );
}

function noTableMessage(tables: ParsedTable[], problems: Problem[], keyNames: string[], valueNames: string[], where: string): string {
  const keyName = keyNames.join('/');
  const valueName = valueNames.join('/');
  const partial = tables.find((t) => (columnIndex(t.table.header, keyNames) >= 0) !== (columnIndex(t.table.header, valueNames) >= 0));
  let message: string;
  if (partial) {
    const missing = columnIndex(partial.table.header, keyNames) >= 0 ? valueName : keyName;
    message = `the table at line ${partial.table.startLine} of ${where} has no column ${missing} (its columns: ${partial.table.header.join(' | ')}); name the column to use`;
  } else {
    const found = tables.map((t) => `line ${t.table.startLine}: ${t.table.header.some((h) => h !== '') ? t.table.header.join(' | ') : '(no header row)'}`);
    message = `no table with columns ${keyName} and ${valueName} in ${where} (${found.length ? `found tables with headers: ${found.join('; ')}` : 'found no tables'})`;
  }
  if (problems.length > 0) message += `; docutils would also reject: ${problems.map((p) => `line ${p.line}: ${p.message.replace(/\s+/g, ' ')}`).join('; ')}`;
  return message;
}

function assemble(lines: { raw: string; eol: string }[], start: number, end: number, replacement: NewLine[]): string {
  const tableEol = lines[start].eol || lines.find((l) => l.eol !== '')?.eol || '\n';
  const out: { raw: string; eol: string }[] = [
    ...lines.slice(0, start),
    ...replacement.map((l) => ({ raw: l.text, eol: l.from !== undefined ? lines[l.from].eol : tableEol })),
    ...lines.slice(end + 1),
  ];
  const lastHadEol = lines[lines.length - 1].eol !== '';
  out.forEach((l, i) => {
    if (i < out.length - 1 && l.eol === '') l.eol = tableEol;
  });
  if (!lastHadEol) out[out.length - 1].eol = '';
  else if (out[out.length - 1].eol === '') out[out.length - 1].eol = tableEol;
  return out.map((l) => l.raw + l.eol).join('');
}

/** Reads the result back and checks the table says exactly what was intended; a safety net against odd layouts. */
function verify(result: string, edit: Edit): Table {
  const { pt, k, v, key, value, row } = edit;
  const expected = pt.table.rows.map((r) => [...r.cells]);
  if (row === null) {
    const cells = pt.table.header.map(() => '');
    cells[k] = key;
    cells[v] = value;
    expected.push(cells);
  } else {
    expected[row][v] = value;
  }
  const after = readTables(result, { syntax: edit.syntax }).find((t) => t.startLine === pt.table.startLine && t.format === pt.table.format);
  const same =
    after !== undefined &&
    JSON.stringify(after.header) === JSON.stringify(pt.table.header) &&
    JSON.stringify(after.rows.map((r) => r.cells)) === JSON.stringify(expected);
  if (!same) {
    throw new TableError(
      `cannot edit the table at line ${pt.table.startLine} of ${edit.where} safely (its layout would not read back as intended); edit the row for ${key} by hand`,
    );
  }
  return after;
}

interface Edit {
  pt: ParsedTable;
  lines: { raw: string; eol: string }[];
  k: number;
  v: number;
  key: string;
  value: string;
  row: number | null;
  where: string;
  syntax?: Syntax;
}

interface WorkLine {
  cols: Cols;
  /** Block index of the original line, if this is one. */
  from?: number;
}

function fill(n: number, ch: string): Cols {
  return new Array<string>(Math.max(0, n)).fill(ch);
}

function writeAt(cols: Cols, at: number, text: string): Cols {
  const value = toCols(text);
  const out = cols.length < at ? [...cols, ...fill(at - cols.length, ' ')] : [...cols];
  for (let i = 0; i < value.length; i++) out[at + i] = value[i];
  return out;
}

/** Turns work lines back into source lines; untouched lines keep their exact bytes. */
function emit(edit: Edit, work: WorkLine[]): NewLine[] {
  const { pt, lines } = edit;
  return work.map((w) => {
    if (w.from !== undefined) {
      const original = pt.block[w.from];
      if (original.length === w.cols.length && original.every((c, i) => c === w.cols[i])) {
        return { text: lines[pt.start + w.from].raw, from: pt.start + w.from };
      }
      return { text: pt.indent + colsText(rstripCols(w.cols)), from: pt.start + w.from };
    }
    return { text: pt.indent + colsText(rstripCols(w.cols)) };
  });
}

function checkSpan(edit: Edit, row: ParsedRow, column: number): Cell {
  const cell = row.cells[column];
  if (!cell || cell.morecols > 0 || cell.morerows > 0) {
    throw new TableError(`the row for ${edit.key} at line ${edit.pt.start + row.first + 1} of ${edit.where} has a cell spanning several columns or rows; edit it by hand`);
  }
  return cell;
}

// ---------------------------------------------------------------- RST simple tables

const SIMPLE_BORDER = /^=+[ =]*$/;
const SPAN_LINE = /^-[ -]*$/;

function editSimple(edit: Edit): NewLine[] {
  const { pt, k, v, key, value, row } = edit;
  const work: WorkLine[] = pt.block.map((cols, i) => ({ cols: [...cols], from: i }));
  const columns = pt.columns.map((c) => [...c] as [number, number]);
  const last = columns.length - 1;
  const specs = new Map<number, [number, number][]>();
  for (const r of [...pt.headRows, ...pt.bodyRows]) {
    const spec = (r.columns ?? columns).map((c) => [...c] as [number, number]);
    for (let i = r.first; i < r.first + r.count; i++) specs.set(i, spec);
  }

  const widen = (c: number, extra: number): void => {
    const oldEnd = columns[c][1];
    for (const [i, w] of work.entries()) {
      const s = w.cols.join('');
      if (SIMPLE_BORDER.test(s) || SPAN_LINE.test(s)) {
        if (c === last) w.cols = [...w.cols, ...fill(extra, w.cols[w.cols.length - 1])];
        else w.cols.splice(oldEnd, 0, ...fill(extra, w.cols[oldEnd - 1]));
        continue;
      }
      if (c === last) continue;
      const spec = specs.get(i) ?? columns;
      const seg = spec.find(([a, b]) => a <= columns[c][0] && b >= oldEnd);
      if (seg && seg === spec[spec.length - 1] && seg[1] !== oldEnd) continue; // merged into the unbounded last column
      const at = seg ? seg[1] : oldEnd;
      if (w.cols.length > at) w.cols.splice(at, 0, ...fill(extra, ' '));
    }
    const shift = (pair: [number, number]): void => {
      if (pair[0] >= oldEnd) pair[0] += extra;
      if (pair[1] >= oldEnd) pair[1] += extra;
    };
    columns.forEach(shift);
    for (const spec of new Set(specs.values())) spec.forEach(shift);
  };
  const ensure = (c: number, text: string): void => {
    const need = displayWidth(text) - (columns[c][1] - columns[c][0]);
    if (need > 0) widen(c, need);
  };

  ensure(v, value);
  if (row === null) ensure(k, key);

  if (row !== null) {
    const r = pt.bodyRows[row];
    checkSpan(edit, r, v);
    const [s, e] = columns[v];
    for (let i = r.first; i < r.first + r.count; i++) {
      const w = work[i];
      const wasBlank = isBlankCols(w.cols);
      let cols = v === last ? w.cols.slice(0, s) : w.cols.map((c, j) => (j >= s && j < e ? ' ' : c));
      if (i === r.first) cols = writeAt(cols, s, value);
      w.cols = rstripCols(cols);
      if (i !== r.first && !wasBlank && w.cols.length === 0) w.from = -1;
    }
    return emit(edit, work.filter((w) => w.from !== -1));
  }

  let cols: Cols = [];
  cols = writeAt(cols, columns[k][0], key);
  cols = writeAt(cols, columns[v][0], value);
  cols = rstripCols(cols);
  if (isBlankCols(cols.slice(columns[0][0], columns[0][1]))) {
    throw new TableError(`cannot append ${key} to the simple table at line ${pt.table.startLine} of ${edit.where}: its first column would be empty; add the row by hand`);
  }
  const text = cols.join('');
  if (SIMPLE_BORDER.test(text) || SPAN_LINE.test(text)) {
    throw new TableError(`the row for ${key} would read as a table border; give a different key or value`);
  }
  const bottom = work.length - 1;
  work.splice(bottom, 0, { cols });
  return emit(edit, work);
}

// ---------------------------------------------------------------- RST grid tables

function editGrid(edit: Edit): NewLine[] {
  const { pt, k, v, key, value, row } = edit;
  const work: WorkLine[] = pt.block.map((cols, i) => ({ cols: [...cols], from: i }));
  const copies = new Map<Cell, Cell>();
  for (const r of [...pt.headRows, ...pt.bodyRows]) for (const c of r.cells) if (c) copies.set(c, { ...c });
  const cells = [...copies.values()];
  const bounds = [pt.columns[0][0], ...pt.columns.map((c) => c[1])];

  const widen = (c: number, extra: number): void => {
    const p = bounds[c + 1];
    for (const [i, w] of work.entries()) {
      const spanning = cells.find((x) => x.left < p && p < x.right && x.top < i && i < x.bottom);
      if (spanning) {
        w.cols.splice(spanning.right, 0, ...fill(extra, ' '));
        continue;
      }
      const owner = cells.find((x) => x.left < p - 1 && p - 1 < x.right && x.top <= i && i <= x.bottom);
      const border = owner !== undefined && (i === owner.top || i === owner.bottom);
      w.cols.splice(p, 0, ...fill(extra, border ? w.cols[p - 1] : ' '));
    }
    for (const x of cells) {
      if (x.left >= p) x.left += extra;
      if (x.right >= p) x.right += extra;
    }
    for (let b = c + 1; b < bounds.length; b++) bounds[b] += extra;
  };
  const ensure = (c: number, text: string): void => {
    const need = displayWidth(text) + 2 - (bounds[c + 1] - bounds[c] - 1);
    if (need > 0) widen(c, need);
  };

  ensure(v, value);
  if (row === null) ensure(k, key);

  if (row !== null) {
    const r = pt.bodyRows[row];
    const original = checkSpan(edit, r, v);
    const cell = copies.get(original)!;
    for (let i = cell.top + 1; i < cell.bottom; i++) {
      const w = work[i];
      for (let j = cell.left + 1; j < cell.right; j++) w.cols[j] = ' ';
      if (i === cell.top + 1) {
        const value_ = toCols(value);
        for (let j = 0; j < value_.length; j++) w.cols[cell.left + 2 + j] = value_[j];
      }
    }
    // Lines of the row left blank in every cell (the old value was longer) go, when no cell spans rows there.
    const own = r.cells.filter((c): c is Cell => c !== null);
    const simpleRow = own.every((c) => c.morerows === 0) && own.reduce((n, c) => n + c.morecols + 1, 0) === bounds.length - 1;
    if (simpleRow) {
      for (let i = cell.top + 2; i < cell.bottom; i++) {
        const interior = work[i].cols.filter((_, j) => !bounds.includes(j));
        if (isBlankCols(interior) && !isBlankCols(pt.block[i].filter((_, j) => !pt.columns.some(([a, b]) => j === a || j === b)))) work[i].from = -1;
      }
    }
    return emit(edit, work.filter((w) => w.from !== -1));
  }

  const rowCols: Cols = ['|'];
  const sepCols: Cols = ['+'];
  for (let c = 0; c + 1 < bounds.length; c++) {
    const width = bounds[c + 1] - bounds[c] - 1;
    const text = c === k ? key : c === v ? value : '';
    const content = toCols(text === '' ? '' : ` ${text}`);
    rowCols.push(...content, ...fill(width - content.length, ' '), '|');
    sepCols.push(...fill(width, '-'), '+');
  }
  const bottom = work[work.length - 1];
  if (bounds.some((b) => bottom.cols[b] !== '+')) bottom.cols = [...sepCols];
  work.push({ cols: rowCols }, { cols: sepCols });
  return emit(edit, work);
}

// ---------------------------------------------------------------- Markdown pipe tables

function editMarkdown(edit: Edit): NewLine[] {
  const { pt, lines, k, v, key, value, row } = edit;
  const raw = lines.slice(pt.start, pt.end + 1).map((l) => l.raw);
  const width = pt.table.header.length;
  const parsed = raw.map((l) => splitPipes(l));
  const { leading, trailing } = parsed[0];
  const pipePositions = (line: string): number[] => {
    const cols = toCols(prepareLine(line));
    const at: number[] = [];
    cols.forEach((c, i) => {
      if (c === '|' && cols[i - 1] !== '\\') at.push(i);
    });
    return at;
  };
  const positions = raw.map(pipePositions);
  const aligned =
    leading &&
    trailing &&
    positions[0].length === width + 1 &&
    positions.every((p) => p.length === positions[0].length && p.every((x, i) => x === positions[0][i])) &&
    raw.every((l) => l.startsWith('|'));
  const cellsOf = (index: number): string[] => {
    const cells = parsed[index].cells.slice(0, width).map((c) => c.trim());
    while (cells.length < width) cells.push('');
    return cells;
  };
  const newCells = row === null ? pt.table.header.map((_, c) => (c === k ? key : c === v ? value : '')) : cellsOf(row + 2).map((c, i) => (i === v ? value : c));

  // Without a leading pipe an empty first cell would vanish (a leading pipe is only a border), so add one then.
  const plain = (cells: string[]): string => (leading || cells[0] === '' ? '| ' : '') + cells.join(' | ').trimEnd() + (trailing ? ' |' : '');
  const result: NewLine[] = raw.map((text, i) => ({ text, from: pt.start + i }));
  if (!aligned) {
    if (row === null) result.push({ text: plain(newCells) });
    else result[row + 2] = { text: plain(newCells), from: pt.start + row + 2 };
    return result;
  }

  const widths = positions[0].slice(1).map((p, i) => p - positions[0][i] - 1);
  const need = newCells.map((c) => displayWidth(c) + 2);
  const padded = (cells: string[], w: number[]): string =>
    '|' + cells.map((c, i) => ` ${c}${' '.repeat(Math.max(0, w[i] - 1 - displayWidth(c)))}`).join('|') + '|';
  if (need.every((n, i) => n <= widths[i])) {
    const text = padded(newCells, widths);
    if (row === null) result.push({ text });
    else result[row + 2] = { text, from: pt.start + row + 2 };
    return result;
  }
  const w2 = widths.map((w, i) => Math.max(w, need[i]));
  const delimiter = (): string => {
    const cells = parsed[1].cells.slice(0, width);
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
  const out: NewLine[] = raw.map((_, i) => ({ text: i === 1 ? delimiter() : padded(cellsOf(i), w2), from: pt.start + i }));
  if (row === null) out.push({ text: padded(newCells, w2) });
  else out[row + 2] = { text: padded(newCells, w2), from: pt.start + row + 2 };
  return out;
}
