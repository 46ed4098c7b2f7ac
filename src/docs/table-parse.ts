// Finds and parses the tables of a document: RST simple and grid tables the way docutils 0.19 does
// (docutils/parsers/rst/tableparser.py and the isolate_* steps in states.py, on display columns), and
// Markdown pipe tables the way GitHub does. Keeps the layout so that table.ts can edit a table in place.
// Rows keep only where they are, and a table's lines are read from the document when asked for: a cell's text is
// made when it is read, so a huge table costs little memory.
import {
  colsText,
  isBlankCols,
  isPySpace,
  leadingBlank,
  prepareLine,
  rstripCols,
  sliceCols,
  toCols,
  units,
  type Cols,
  type SourceLines,
} from './text-width.js';

export type TableFormat = 'rst-simple' | 'rst-grid' | 'markdown';
export type Syntax = 'rst' | 'markdown' | 'auto';

export interface Table {
  format: TableFormat;
  /** First and last line of the table in the file, 1-based. */
  startLine: number;
  endLine: number;
  /** The header row's cells (head rows joined with '\n' per column when there are several). */
  header: string[];
  /**
   * Body rows; `line` is the row's first line in the file. A cell spanning columns sits in its first column, the
   * rest ''. Cells read as docutils (or GitHub) shows them: escapes removed, inline markup reduced to its text.
   */
  rows: { cells: string[]; line: number }[];
}

/** A cell's extent in block coordinates: grid tables its border lines and columns; simple tables its lines and columns. */
export interface Cell {
  morerows: number;
  morecols: number;
  top: number;
  left: number;
  bottom: number;
  right: number;
}

export interface ParsedRow {
  /** Block (Markdown: table) line of the row's first line, and how many lines the row takes. */
  first: number;
  count: number;
  /** Grid tables: one per column; null where a spanning cell covers it. */
  cells?: (Cell | null)[];
  /** Simple tables: the column spec of a row under a span line, as [start, end) pairs; others use the table's. */
  columns?: [number, number][];
}

/** A table's rows. Simple-table and Markdown rows are kept as numbers and made when asked for: a long table is mostly rows. */
export abstract class RowList {
  abstract readonly length: number;
  abstract row(i: number): ParsedRow;
  *[Symbol.iterator](): Iterator<ParsedRow> {
    for (let i = 0; i < this.length; i++) yield this.row(i);
  }
}

/** Rows [from, to) of lists of first lines and line counts; rows under a span line keep their column spec aside. */
class CompactRows extends RowList {
  constructor(
    private readonly first: Int32Array,
    private readonly count: Int32Array,
    private readonly spans: Map<number, [number, number][]>,
    private readonly from: number,
    private readonly to: number,
  ) {
    super();
  }
  get length(): number {
    return this.to - this.from;
  }
  row(i: number): ParsedRow {
    const n = this.from + i;
    const columns = this.spans.get(n);
    return columns ? { first: this.first[n], count: this.count[n], columns } : { first: this.first[n], count: this.count[n] };
  }
}

/** One row per line, from table line `offset` on. */
class LineRows extends RowList {
  constructor(
    readonly length: number,
    private readonly offset: number,
  ) {
    super();
  }
  row(i: number): ParsedRow {
    return { first: this.offset + i, count: 1 };
  }
}

export interface ParsedTable {
  format: TableFormat;
  /** Index (0-based) of the first and last source line of the table. */
  start: number;
  end: number;
  /** The table's first line number in the file, 1-based (start + 1 unless parsed from a window). */
  startLine: number;
  indent: string;
  /** RST: the table's lines as docutils sees them, indentation removed, as display columns. */
  block: Block;
  /** The lines the table was found in. */
  source: SourceLines;
  headRows: RowList;
  bodyRows: RowList;
  /** Column boundaries: simple tables [start, end) per column from the top border; grid: '+' positions. */
  columns: [number, number][];
  /** Grid tables: the line of the head/body separator (block index). */
  headSep?: number;
  /** Grid tables: every cell. */
  grid?: GridCells;
}

export interface Problem {
  line: number;
  message: string;
}

export class TableMarkupError extends Error {
  override name = 'TableMarkupError';
  constructor(
    message: string,
    readonly offset = 0,
  ) {
    super(message);
  }
}

/** Lines of a table, as display columns, made when asked for (the last few are kept). */
export interface Block {
  readonly length: number;
  line(i: number): Cols;
}

const RECENT = 256;

/** A Markdown table's: it is read from its source lines. */
const NO_BLOCK: Block = { length: 0, line: () => '' };

/** A table's lines read from the document: from `first` on, prepared as docutils does and cut at the indentation. */
class SourceBlock implements Block {
  private readonly keys = new Float64Array(RECENT).fill(-1);
  private readonly cols = new Array<Cols>(RECENT);
  constructor(
    private readonly source: SourceLines,
    private readonly first: number,
    readonly length: number,
    private readonly level: number,
  ) {}
  line(i: number): Cols {
    const slot = i & (RECENT - 1);
    if (this.keys[slot] === i) return this.cols[slot];
    const cols = toCols(prepareLine(this.source.text(this.first + i)).slice(this.level));
    this.keys[slot] = i;
    this.cols[slot] = cols;
    return cols;
  }
}

/** A block with some lines read differently (a parser's own copy, where a separator's `=` become `-`). */
class Overlay implements Block {
  readonly over = new Map<number, Cols>();
  constructor(private readonly base: Block) {}
  get length(): number {
    return this.base.length;
  }
  line(i: number): Cols {
    return this.over.get(i) ?? this.base.line(i);
  }
}

/** A growing list of integers in a typed array: a long table has hundreds of thousands of rows and cells. */
class IntList {
  private data = new Int32Array(64);
  length = 0;
  push(n: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = n;
  }
  get(i: number): number {
    return this.data[i];
  }
  /** The numbers (a view: copying them would only add to the peak). */
  done(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

const SIMPLE_TOP = /^=+( +=+)+ *$/;
const SIMPLE_BORDER = /^=+[ =]*$/;
const GRID_TOP = /^\+-[-+]+-\+ *$/;
const GRID_HEAD_SEP = /^\+=[=+]+=\+ *$/;
const SIMPLE_HEAD_SEP = /^=[ =]*$/;
const SPAN_LINE = /^-[ -]*$/;

/** docutils' StringList.get_2D_block on display columns: slice, right-strip, remove the common indent, drop PAD. */
function get2DBlock(block: Block, top: number, left: number, bottom: number, right: number): string[] {
  const slices: Cols[] = [];
  for (let i = top; i < bottom; i++) slices.push(rstripCols(sliceCols(block.line(i), left, right)));
  let indent = right;
  for (const s of slices) if (units(s).length > 0) indent = Math.min(indent, leadingBlank(s));
  const cut = indent > 0 && indent < right ? indent : 0;
  return slices.map((s) => colsText(s, cut));
}

const dashes = (line: Cols): Cols =>
  typeof line === 'string' ? line.replaceAll('=', '-') : line.s.includes('=') ? { ...line, s: line.s.replaceAll('=', '-') } : line;

/**
 * Finds the one head/body separator line (`pattern`) of a table block, as both docutils parsers do, and turns its
 * `=` into `-` in place so the rest of the parse sees an ordinary border.
 */
function findHeadSeparator(block: Overlay, pattern: RegExp): number | undefined {
  let headSep: number | undefined;
  for (let i = 0; i < block.length; i++) {
    if (!pattern.test(units(block.line(i)))) continue;
    if (headSep) throw new TableMarkupError(`Multiple head/body row separators (table lines ${headSep + 1} and ${i + 1}); only one allowed.`, i);
    headSep = i;
    block.over.set(i, dashes(block.line(i)));
  }
  if (headSep === 0 || headSep === block.length - 1) {
    throw new TableMarkupError('The head/body row separator may not be the first or last line of the table.');
  }
  return headSep;
}

// ---------------------------------------------------------------- RST simple tables

/** The `-` runs of a border or span line as [start, end) column pairs. */
function dashRuns(line: string): [number, number][] {
  const runs: [number, number][] = [];
  let end = 0;
  for (;;) {
    const begin = line.indexOf('-', end);
    if (begin < 0) return runs;
    end = line.indexOf(' ', begin);
    if (end < 0) end = line.length;
    runs.push([begin, end]);
  }
}

/**
 * Port of docutils' SimpleTableParser on display columns. The last column is open-ended (text may run past the
 * border, as docutils allows), so a row keeps only its lines and, under a span line, its own column spec.
 */
export function parseSimpleBlock(input: Block): { head: RowList; body: RowList; columns: [number, number][]; headSep?: number } {
  const block = new Overlay(input);
  const last = block.length - 1;
  block.over.set(0, dashes(block.line(0)));
  block.over.set(last, dashes(block.line(last)));
  const headSep = findHeadSeparator(block, SIMPLE_HEAD_SEP);
  const columns = dashRuns(units(block.line(0)));
  const borderEnd = columns[columns.length - 1][1];

  const spanColumns = (line: Cols, offset: number): [number, number][] => {
    const cols = dashRuns(units(rstripCols(line)));
    if (cols.length === 0 || cols[cols.length - 1][1] !== borderEnd) {
      throw new TableMarkupError(`Column span incomplete in table line ${offset + 1}.`, offset);
    }
    let i = 0;
    for (const [start, end] of cols) {
      if (i >= columns.length || start !== columns[i][0]) throw new TableMarkupError(`Column span alignment problem in table line ${offset + 2}.`, offset + 1);
      while (end !== columns[i][1]) {
        i++;
        if (i >= columns.length) throw new TableMarkupError(`Column span alignment problem in table line ${offset + 2}.`, offset + 1);
      }
      i++;
    }
    return cols;
  };
  const firsts = new IntList();
  const counts = new IntList();
  const spans = new Map<number, [number, number][]>();
  const parseRow = (first: number, end: number, spanline?: number): void => {
    const cols = spanline === undefined ? columns : spanColumns(block.line(spanline), spanline);
    // Text in a margin is an error; the last column has none (it runs to the end of the line).
    for (let c = 0; c + 1 < cols.length; c++) {
      for (let i = first; i < end; i++) {
        if (!isBlankCols(block.line(i), cols[c][1], cols[c + 1][0])) throw new TableMarkupError(`Text in column margin in table line ${i + 1}.`, i);
      }
    }
    if (spanline !== undefined) spans.set(firsts.length, cols);
    firsts.push(first);
    counts.push(end - first);
  };

  const [firstStart, firstEnd] = columns[0];
  let start = 1;
  let textFound = false;
  for (let offset = 1; offset < block.length; offset++) {
    const line = block.line(offset);
    if (SPAN_LINE.test(units(line))) {
      parseRow(start, offset, offset);
      start = offset + 1;
      textFound = false;
    } else if (!isBlankCols(line, firstStart, firstEnd)) {
      if (textFound && offset !== start) parseRow(start, offset);
      start = offset;
      textFound = true;
    } else if (!textFound) {
      start = offset + 1;
    }
  }

  let firstBody = 0;
  if (headSep) {
    while (firstBody < firsts.length && firsts.get(firstBody) <= headSep) firstBody++;
    if (firstBody === firsts.length) firstBody = 0;
  }
  const [rowFirsts, rowCounts] = [firsts.done(), counts.done()];
  const rows = (from: number, to: number): RowList => new CompactRows(rowFirsts, rowCounts, spans, from, to);
  return { head: rows(0, firstBody), body: rows(firstBody, firsts.length), columns, headSep };
}

// ---------------------------------------------------------------- RST grid tables

/** The smallest number first: corners as top * width + left, in docutils' order (it sorts its list of corners). */
class MinHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(item: number): void {
    const h = this.items;
    h.push(item);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[i] >= h[parent]) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): number {
    const h = this.items;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        let m = i;
        if (l < h.length && h[l] < h[m]) m = l;
        if (l + 1 < h.length && h[l + 1] < h[m]) m = l + 1;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** A grid table's cells as columns of numbers (a long table has hundreds of thousands), and where rows start. */
export interface GridCells {
  top: Int32Array;
  left: Int32Array;
  bottom: Int32Array;
  right: Int32Array;
  morerows: Int32Array;
  morecols: Int32Array;
  /** Border lines between rows, the first and last included. */
  rowseps: Int32Array;
  colseps: Int32Array;
  /** Per row and column (row * columns + column), the cell there or -1 where a spanning cell covers it. */
  slots: Int32Array;
}

export function gridCell(grid: GridCells, n: number): Cell {
  return { top: grid.top[n], left: grid.left[n], bottom: grid.bottom[n], right: grid.right[n], morerows: grid.morerows[n], morecols: grid.morecols[n] };
}

/** Rows [from, to) of a grid table. */
class GridRows extends RowList {
  constructor(
    private readonly grid: GridCells,
    private readonly from: number,
    private readonly to: number,
  ) {
    super();
  }
  get length(): number {
    return this.to - this.from;
  }
  row(i: number): ParsedRow {
    const r = this.from + i;
    const { rowseps, colseps, slots } = this.grid;
    const width = colseps.length - 1;
    const cells: (Cell | null)[] = [];
    for (let c = 0; c < width; c++) cells.push(slots[r * width + c] < 0 ? null : gridCell(this.grid, slots[r * width + c]));
    return { first: rowseps[r] + 1, count: rowseps[r + 1] - rowseps[r] - 1, cells };
  }
}

/** Port of docutils' GridTableParser on display columns. */
export function parseGridBlock(input: Block): { grid: GridCells; headRowCount: number; headSep?: number } {
  const block = new Overlay(input);
  const bottom = block.length - 1;
  const right = units(block.line(0)).length - 1;
  const stride = right + 1;
  const headSep = findHeadSeparator(block, GRID_HEAD_SEP);
  const at = (i: number, j: number): string | undefined => units(block.line(i))[j];
  const done: number[] = new Array<number>(stride).fill(-1);
  const isRowsep = new Uint8Array(block.length);
  const isColsep = new Uint8Array(stride);
  isRowsep[0] = isColsep[0] = 1;
  const found = { top: new IntList(), left: new IntList(), bottom: new IntList(), right: new IntList() };

  const scanUp = (top: number, left: number, bot: number): number[] | null => {
    const seps: number[] = [];
    for (let i = bot - 1; i > top; i--) {
      if (at(i, left) === '+') seps.push(i);
      else if (at(i, left) !== '|') return null;
    }
    return seps;
  };
  const scanLeft = (top: number, left: number, bot: number, rgt: number): { rowseps: number[]; colseps: number[] } | null => {
    const cs: number[] = [];
    const line = units(block.line(bot));
    for (let i = rgt - 1; i > left; i--) {
      if (line[i] === '+') cs.push(i);
      else if (line[i] !== '-') return null;
    }
    if (line[left] !== '+') return null;
    const rs = scanUp(top, left, bot);
    return rs === null ? null : { rowseps: rs, colseps: cs };
  };
  const scanDown = (top: number, left: number, rgt: number): { bottom: number; rowseps: number[]; colseps: number[] } | null => {
    const rs: number[] = [];
    for (let i = top + 1; i <= bottom; i++) {
      if (at(i, rgt) === '+') {
        rs.push(i);
        const result = scanLeft(top, left, i, rgt);
        if (result) return { bottom: i, rowseps: [...rs, ...result.rowseps], colseps: result.colseps };
      } else if (at(i, rgt) !== '|') {
        return null;
      }
    }
    return null;
  };
  const scanRight = (top: number, left: number): { bottom: number; right: number; rowseps: number[]; colseps: number[] } | null => {
    const cs: number[] = [];
    const line = units(block.line(top));
    for (let i = left + 1; i <= right; i++) {
      if (line[i] === '+') {
        cs.push(i);
        const result = scanDown(top, left, i);
        if (result) return { bottom: result.bottom, right: i, rowseps: result.rowseps, colseps: [...cs, ...result.colseps] };
      } else if (line[i] !== '-') {
        return null;
      }
    }
    return null;
  };

  const corners = new MinHeap();
  corners.push(0);
  while (corners.size > 0) {
    const corner = corners.pop();
    const top = Math.floor(corner / stride);
    const left = corner % stride;
    if (top === bottom || left === right || top <= done[left]) continue;
    if (at(top, left) !== '+') continue;
    const result = scanRight(top, left);
    if (!result) continue;
    for (const r of result.rowseps) isRowsep[r] = 1;
    for (const c of result.colseps) isColsep[c] = 1;
    for (let col = left; col < result.right; col++) {
      if (done[col] !== top - 1) throw new TableMarkupError('Malformed table; parse incomplete.');
      done[col] = result.bottom - 1;
    }
    found.top.push(top);
    found.left.push(left);
    found.bottom.push(result.bottom);
    found.right.push(result.right);
    corners.push(top * stride + result.right);
    corners.push(result.bottom * stride + left);
  }
  for (let col = 0; col < right; col++) {
    if (done[col] !== bottom - 1) throw new TableMarkupError('Malformed table; parse incomplete.');
  }

  // Row and column of each separator, as docutils numbers them from its sorted lists.
  const index = (marks: Uint8Array): { seps: Int32Array; of: Int32Array } => {
    const of = new Int32Array(marks.length).fill(-1);
    const seps = new IntList();
    marks.forEach((m, i) => {
      if (m) {
        of[i] = seps.length;
        seps.push(i);
      }
    });
    return { seps: seps.done(), of };
  };
  const rows = index(isRowsep);
  const cols = index(isColsep);
  const width = cols.seps.length - 1;
  const n = found.top.length;
  const grid: GridCells = {
    top: found.top.done(),
    left: found.left.done(),
    bottom: found.bottom.done(),
    right: found.right.done(),
    morerows: new Int32Array(n),
    morecols: new Int32Array(n),
    rowseps: rows.seps,
    colseps: cols.seps,
    slots: new Int32Array((rows.seps.length - 1) * width).fill(-1),
  };
  for (let k = 0; k < n; k++) {
    const r = rows.of[grid.top[k]];
    const c = cols.of[grid.left[k]];
    grid.morerows[k] = rows.of[grid.bottom[k]] - r - 1;
    grid.morecols[k] = cols.of[grid.right[k]] - c - 1;
    grid.slots[r * width + c] = k;
  }
  let headRowCount = 0;
  if (headSep) {
    if (rows.of[headSep] < 0) throw new TableMarkupError('The head/body row separator does not run across the whole table.', headSep);
    headRowCount = rows.of[headSep];
  }
  return { grid, headRowCount, headSep };
}

// ---------------------------------------------------------------- finding tables in a document

/** Directives whose content docutils/Sphinx do not parse as reStructuredText (so a table there is just text). */
const LITERAL_DIRECTIVES = new Set([
  'code', 'code-block', 'sourcecode', 'literalinclude', 'highlight', 'parsed-literal', 'raw', 'math', 'csv-table',
  'graphviz', 'digraph', 'graph', 'uml', 'mermaid', 'doctest', 'testcode', 'testoutput', 'testsetup', 'testcleanup',
  'ipython', 'jupyter-execute', 'prompt', 'productionlist',
]);

/** Each line's indentation once prepared (tabs expanded), -1 for a blank line. */
function indents(lines: SourceLines): Int32Array {
  const out = new Int32Array(lines.length);
  for (let i = 0; i < out.length; i++) {
    const text = prepareLine(lines.text(i));
    let n = 0;
    while (n < text.length && text.charCodeAt(n) === 32) n++;
    out[i] = text === '' ? -1 : n;
  }
  return out;
}

/** Lines docutils would not read as body text at this level: literal blocks, comments, code directives. */
function skipLiteral(indent: Int32Array, i: number, level: number): number {
  let j = i + 1;
  while (j < indent.length && (indent[j] < 0 || indent[j] > level)) j++;
  // Trailing blank lines belong to what follows.
  while (j - 1 > i && indent[j - 1] < 0) j--;
  return j;
}

interface Scan {
  lines: SourceLines;
  indent: Int32Array;
  /** The prepared line from column `from` on ('' for a blank line). */
  rel(i: number, from: number): string;
}

/**
 * Every table in the lines, in order. `firstLine` is the file line of lines[0] (1-based), for a window of a
 * document read again after an edit.
 */
export function findTables(lines: SourceLines, syntax: Syntax = 'auto', firstLine = 1): { tables: ParsedTable[]; problems: Problem[] } {
  const indent = indents(lines);
  const scan: Scan = { lines, indent, rel: (i, from) => (indent[i] < 0 ? '' : prepareLine(lines.text(i)).slice(from)) };
  const tables: ParsedTable[] = [];
  const problems: Problem[] = [];
  if (syntax !== 'markdown') findRstTables(scan, tables, problems, firstLine);
  if (syntax !== 'rst') {
    const taken = new Uint8Array(lines.length);
    for (const t of tables) taken.fill(1, t.start, t.end + 1);
    findMarkdownTables(scan, taken, tables, firstLine);
  }
  tables.sort((a, b) => a.start - b.start);
  return { tables, problems };
}

function findRstTables(scan: Scan, tables: ParsedTable[], problems: Problem[], firstLine: number): void {
  const { indent } = scan;
  let prevBlank = true;
  let prevIndent = 0;
  let i = 0;
  while (i < indent.length) {
    if (indent[i] < 0) {
      prevBlank = true;
      i++;
      continue;
    }
    const level = indent[i];
    const content = scan.rel(i, level);
    const startsBlock = prevBlank || level !== prevIndent;
    if (startsBlock && (SIMPLE_TOP.test(content) || GRID_TOP.test(content))) {
      const simple = SIMPLE_TOP.test(content);
      const result = simple ? isolateSimple(scan, i, level) : isolateGrid(scan, i, level);
      if ('error' in result) {
        problems.push({ line: firstLine + i + (result.offset ?? 0), message: result.error });
        i = result.resume;
      } else {
        try {
          tables.push(buildTable(scan.lines, i, result.end, level, simple ? 'rst-simple' : 'rst-grid', firstLine));
        } catch (error) {
          if (!(error instanceof TableMarkupError)) throw error;
          problems.push({ line: firstLine + i + error.offset, message: `Malformed table. ${error.message}` });
        }
        i = result.end + 1;
      }
      prevBlank = false;
      prevIndent = level;
      continue;
    }
    const directive = /^\.\.\s+([\w.:+-]+?)::(\s|$)/.exec(content);
    const isComment = /^\.\.(\s|$)/.test(content) && !directive && !/^\.\.\s+(_|\[|\|)/.test(content);
    if ((directive && LITERAL_DIRECTIVES.has(directive[1].toLowerCase())) || isComment || (content.endsWith('::') && !directive)) {
      i = skipLiteral(indent, i, level);
      prevBlank = false;
      prevIndent = level;
      continue;
    }
    prevBlank = false;
    prevIndent = level;
    i++;
  }
}

type Isolated = { end: number } | { error: string; resume: number; offset?: number };

function isolateSimple(scan: Scan, start: number, level: number): Isolated {
  const { indent } = scan;
  const toplen = scan.rel(start, level).trim().length;
  let limit = indent.length - 1;
  for (let j = start + 1; j < indent.length; j++) {
    if (indent[j] >= 0 && indent[j] < level) {
      limit = j - 1;
      break;
    }
  }
  let found = 0;
  let foundAt = -1;
  let end = -1;
  for (let i = start + 1; i <= limit; i++) {
    const line = scan.rel(i, level);
    if (SIMPLE_BORDER.test(line)) {
      if (line.trim().length !== toplen) {
        return { error: 'Malformed table. Bottom/header table border does not match top border.', resume: i + 1, offset: 0 };
      }
      found++;
      foundAt = i;
      if (found === 2 || i === limit || indent[i + 1] < 0) {
        end = i;
        break;
      }
    }
  }
  if (end < 0) {
    return {
      error: `Malformed table. No bottom table border found${found ? ' or no blank line after table bottom' : ''}.`,
      resume: found ? foundAt + 1 : limit + 1,
    };
  }
  return { end };
}

function isolateGrid(scan: Scan, start: number, level: number): Isolated {
  const { indent } = scan;
  let j = start;
  while (j < indent.length && indent[j] === level) j++;
  // The block: the lines at this indentation that start with '+' or '|'.
  const all = new SourceBlock(scan.lines, start, j - start, level);
  let length = 0;
  while (length < all.length && '+|'.includes(units(all.line(length))[0] || '.')) length++;
  const width = units(all.line(0)).length;
  if (!GRID_TOP.test(units(all.line(length - 1)))) {
    let cut = -1;
    for (let i = length - 2; i > 1; i--) {
      if (GRID_TOP.test(units(all.line(i)))) {
        cut = i;
        break;
      }
    }
    if (cut < 0) return { error: 'Malformed table.', resume: start + length };
    length = cut + 1;
  }
  for (let i = 0; i < length; i++) {
    const s = units(all.line(i));
    const last = s[s.length - 1];
    if (s.length !== width || (last !== '+' && last !== '|')) return { error: 'Malformed table.', resume: start + length };
  }
  return { end: start + length - 1 };
}

function buildTable(source: SourceLines, start: number, end: number, indent: number, format: TableFormat, firstLine: number): ParsedTable {
  const block = new SourceBlock(source, start, end - start + 1, indent);
  const base = { format, start, end, startLine: firstLine + start, indent: ' '.repeat(indent), block, source };
  if (format === 'rst-simple') {
    const parsed = parseSimpleBlock(block);
    return { ...base, headRows: parsed.head, bodyRows: parsed.body, columns: parsed.columns, headSep: parsed.headSep };
  }
  const parsed = parseGridBlock(block);
  const { grid } = parsed;
  const columns = Array.from(grid.colseps.subarray(1), (c, i): [number, number] => [grid.colseps[i], c]);
  return {
    ...base,
    headRows: new GridRows(grid, 0, parsed.headRowCount),
    bodyRows: new GridRows(grid, parsed.headRowCount, grid.rowseps.length - 1),
    columns,
    headSep: parsed.headSep,
    grid,
  };
}

// ---------------------------------------------------------------- Markdown pipe tables

const MD_DELIMITER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** Splits a pipe-table line into raw cells (untrimmed), honouring backslash-escaped pipes as GitHub does. */
export function splitPipes(line: string): { cells: string[]; leading: boolean; trailing: boolean } {
  let text = line.trim();
  const leading = text.startsWith('|');
  if (leading) text = text.slice(1);
  let trailing = false;
  if (text.endsWith('|') && !text.endsWith('\\|')) {
    trailing = true;
    text = text.slice(0, -1);
  }
  const cells: string[] = [];
  let from = 0;
  for (let at = text.indexOf('|'); at >= 0; at = text.indexOf('|', at + 1)) {
    if (at > 0 && text[at - 1] === '\\') continue;
    cells.push(text.slice(from, at));
    from = at + 1;
  }
  cells.push(text.slice(from));
  return { cells, leading, trailing };
}

function findMarkdownTables(scan: Scan, taken: Uint8Array, tables: ParsedTable[], firstLine: number): void {
  const { lines, indent } = scan;
  const raw = (i: number): string => lines.text(i);
  let fence: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})/.exec(raw(i));
    if (fence !== null) {
      if (fenceMatch && fenceMatch[1][0] === fence[0] && fenceMatch[1].length >= fence.length && raw(i).trim() === fenceMatch[1]) fence = null;
      continue;
    }
    if (fenceMatch) {
      fence = fenceMatch[1];
      continue;
    }
    if (taken[i] || i + 1 >= lines.length || taken[i + 1]) continue;
    if (!raw(i).includes('|') || !raw(i + 1).includes('-') || !MD_DELIMITER.test(raw(i + 1))) continue;
    if (/^ {4,}/.test(raw(i))) continue;
    if (splitPipes(raw(i)).cells.length !== splitPipes(raw(i + 1)).cells.length) continue;
    let end = i + 1;
    while (end + 1 < lines.length && indent[end + 1] >= 0 && raw(end + 1).includes('|') && !taken[end + 1]) end++;
    tables.push({
      format: 'markdown',
      start: i,
      end,
      startLine: firstLine + i,
      indent: '',
      block: NO_BLOCK,
      source: lines,
      headRows: new LineRows(1, 0),
      bodyRows: new LineRows(end - i - 1, 2),
      columns: [],
    });
    i = end;
  }
}

// ---------------------------------------------------------------- reading cells

/** Number of columns: the top border's (RST) or the header's (Markdown). */
export function columnCount(pt: ParsedTable): number {
  return pt.format === 'markdown' ? splitPipes(pt.source.text(pt.start)).cells.length : pt.columns.length;
}

/** The row's cells in its table's layout (simple tables: lines and columns; the last column runs to the end of the line). */
export function rowCells(pt: ParsedTable, row: ParsedRow): (Cell | null)[] {
  if (row.cells) return row.cells;
  const spec = row.columns ?? pt.columns;
  const out: (Cell | null)[] = [];
  let i = 0;
  for (const [start, end] of spec) {
    let morecols = 0;
    while (i + morecols < pt.columns.length - 1 && pt.columns[i + morecols][1] !== end) morecols++;
    const last = i + morecols === pt.columns.length - 1;
    out.push({ morerows: 0, morecols, top: row.first, bottom: row.first + row.count, left: start, right: last ? Number.MAX_SAFE_INTEGER : end });
    for (let k = 0; k < morecols; k++) out.push(null);
    i += morecols + 1;
  }
  return out;
}

/** The source text of a cell: its lines as docutils cuts them out of the table, or a Markdown cell's raw text. */
export function cellSource(pt: ParsedTable, row: ParsedRow, column: number): string[] {
  if (pt.format === 'markdown') return [splitPipes(pt.source.text(pt.start + row.first)).cells[column] ?? ''];
  const cell = rowCells(pt, row)[column];
  if (!cell) return [];
  return pt.format === 'rst-grid' ? get2DBlock(pt.block, cell.top + 1, cell.left + 1, cell.bottom, cell.right) : get2DBlock(pt.block, cell.top, cell.left, cell.bottom, cell.right);
}

/** A cell as it reads, and whether it is plain text (no markup at all, so it reads exactly as written). */
export function readCell(pt: ParsedTable, row: ParsedRow, column: number): CellText {
  const lines = cellSource(pt, row, column);
  return pt.format === 'markdown' ? readMarkdownCell(lines[0] ?? '') : readRstCell(lines);
}

export function readRow(pt: ParsedTable, row: ParsedRow): string[] {
  const width = columnCount(pt);
  const cells: string[] = [];
  for (let c = 0; c < width; c++) cells.push(readCell(pt, row, c).text);
  return cells;
}

export function readHeader(pt: ParsedTable): string[] {
  if (pt.headRows.length === 0) return [];
  const heads = [...pt.headRows].map((r) => readRow(pt, r));
  return heads[0].map((_, c) => heads.map((h) => h[c]).filter((t) => t !== '').join('\n'));
}

export function rowLine(pt: ParsedTable, row: ParsedRow): number {
  return pt.startLine + row.first;
}

export function tableOf(pt: ParsedTable): Table {
  return {
    format: pt.format,
    startLine: pt.startLine,
    endLine: pt.startLine + pt.end - pt.start,
    header: readHeader(pt),
    rows: Array.from(pt.bodyRows, (r) => ({ cells: readRow(pt, r), line: rowLine(pt, r) })),
  };
}


// ---------------------------------------------------------------- what a cell says

/** A cell's text as a reader sees it, and whether it is plain: no markup at all, so it reads exactly as written. */
export interface CellText {
  text: string;
  plain: boolean;
}

// The constructs docutils recognises at the start of a line (states.py, Body.patterns), in its order.
const OPTARG = String.raw`(?:[a-zA-Z][a-zA-Z0-9_-]*|<[^<>]+>)`;
const OPTION = String.raw`(?:[-+][a-zA-Z0-9](?: ?${OPTARG})?|(?:--|/)[a-zA-Z0-9][a-zA-Z0-9_-]*(?:[ =]${OPTARG})?)`;
const ENUM = String.raw`(?:\d+|[a-zA-Z]|[ivxlcdm]+|[IVXLCDM]+|#)`;
const RST_BLOCK_STARTS: [string, RegExp][] = [
  ['bullet', /^[-+*\u2022\u2023\u2043]( +|$)/],
  ['enumerator', new RegExp(String.raw`^(?:\(${ENUM}\)|${ENUM}[.)])( +|$)`)],
  ['field', /^:(?![: ])(?:[^:\\]|\\.|:(?![ `]|$))*(?<! ):( +|$)/],
  // An option with nothing after it is text (docutils takes it back when no description follows).
  ['option', new RegExp(String.raw`^${OPTION}(?:, ${OPTION})*  +\S`)],
  ['doctest', /^>>>( +|$)/],
  ['line block', /^\|( +|$)/],
  ['grid table', GRID_TOP],
  ['simple table', SIMPLE_TOP],
  ['explicit markup', /^\.\.( +|$)/],
  ['anonymous target', /^__( +|$)/],
  ['transition or section adornment', /^([!-/:-@[-`{-~])\1* *$/],
];

/** What docutils would make of a line that starts a block (a list, a comment, a transition...), if anything. */
export function rstBlockStart(line: string): string | undefined {
  const first = line.charCodeAt(0);
  // Only an enumerator starts with a letter or digit, and only a bullet with a character beyond ASCII.
  if (/^[a-zA-Z0-9]/.test(line)) return RST_BLOCK_STARTS[1][1].test(line) ? 'enumerator' : undefined;
  if (first > 0x7f) return RST_BLOCK_STARTS[0][1].test(line) ? 'bullet' : undefined;
  return RST_BLOCK_STARTS.find(([, pattern]) => pattern.test(line))?.[0];
}

/** A paragraph ending in an unescaped '::' announces a literal block (states.py, Body.paragraph). */
export const RST_LITERAL_MARKER = /(?<!\\)(\\\\)*::$/;

// Inline markup recognition (docutils' Inliner): start-strings need whitespace, an opener or a delimiter before
// them; end-strings need whitespace, a closer or a delimiter after. docutils lists the non-ASCII punctuation by
// Unicode category; the categories stand in for its lists here.
const PY_SPACE_CLASS = String.raw`\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const NON_ASCII_PUNCT = /^[\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Pd}\p{Po}]$/u;
const END_SUFFIX = String.raw`(?=$|[${PY_SPACE_CLASS}\0\\.,;!?\-/:"')>\]}]|(?![\0-\x7f])[\p{Pe}\p{Pf}\p{Pi}\p{Pd}\p{Po}])`;
const SIMPLENAME = String.raw`[\p{L}\p{N}]+(?:[-._+:][\p{L}\p{N}]+)*`;
const WHOLE = new RegExp(String.raw`(?:(?<refname>${SIMPLENAME})(?<refend>__?)|\[(?<label>[0-9]+|#(?:${SIMPLENAME})?|\*|${SIMPLENAME})\]_)${END_SUFFIX}`, 'uy');
const BACKQUOTE = new RegExp(String.raw`(?<role>:${SIMPLENAME}:)?\x60(?!\x60)(?![${PY_SPACE_CLASS}])`, 'uy');
const END = {
  '**': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\*\*${END_SUFFIX}`, 'u'),
  '*': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\*${END_SUFFIX}`, 'u'),
  '``': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}])\x60\x60${END_SUFFIX}`, 'u'),
  '_`': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\x60${END_SUFFIX}`, 'u'),
  '|': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\|_{0,2}${END_SUFFIX}`, 'u'),
  '`': new RegExp(String.raw`(?<!(?<!\0)[${PY_SPACE_CLASS}\0])\x60(?<suffix>(?<role>:${SIMPLENAME}:)?(?<refend>__?)?)${END_SUFFIX}`, 'u'),
};
const OPENERS: Record<string, string> = { '"': '"', "'": "'", '(': ')', '<': '>', '[': ']', '{': '}', '\u00ab': '\u00bb', '\u2018': '\u2019\u201a', '\u201c': '\u201d\u201e', '\u2039': '\u203a', '\u00bb': '\u00bb', '\u2019': '\u2019', '\u201a': '\u2018\u2019', '\u201e': '\u201c\u201d', '\u201d': '\u201d', '\u203a': '\u203a' };

function startPrefixOk(ch: string | undefined): boolean {
  return ch === undefined || isPySpace(ch) || `"'(<[{\\-/:`.includes(ch) || (ch > '\x7f' && NON_ASCII_PUNCT.test(ch));
}

/** Rule 5: a start-string between a matching pair ("*", (*)) is not markup; nor is one at the very end. */
function quoted(text: string, start: number, end: number): boolean {
  if (start === 0) return false;
  if (end >= text.length) return true;
  const before = text[start - 1];
  const after = text[end];
  if (OPENERS[before]?.includes(after)) return true;
  const cp = before.codePointAt(0)!;
  return /^\p{Ps}$/u.test(before) && after.codePointAt(0) === cp + 1;
}

/** docutils' escape2null: a backslash and the character after it become NUL and that character. */
function escape2null(text: string): string {
  return text.includes('\\') ? text.replace(/\\(.|\n)?/gsu, (_, ch: string | undefined) => `\0${ch ?? ''}`) : text;
}

/** docutils' unescape: NULs go, and so does escaped whitespace. */
function unescape(text: string, restoreBackslashes = false): string {
  if (!text.includes('\0')) return text;
  if (restoreBackslashes) return text.replaceAll('\0', '\\');
  return text.replaceAll('\0 ', '').replaceAll('\0\n', '').replaceAll('\0', '');
}

const INLINE_HINT = /[\\*`|_[]/;

/** One paragraph's inline markup reduced to its text, as docutils' astext() gives it before references resolve. */
function readRstInline(source: string): CellText {
  if (!INLINE_HINT.test(source)) return { text: source, plain: true };
  const text = escape2null(source);
  const out: string[] = [];
  let plain = true;
  let done = 0; // text before this is in `out`
  let i = 0;
  let fresh = true; // just after a construct: docutils starts a new search there, so '^' matches
  while (i < text.length) {
    if (!fresh && !startPrefixOk(text[i - 1])) {
      i++;
      continue;
    }
    fresh = false;
    const found = inlineAt(text, i);
    if (!found) {
      i++;
      continue;
    }
    plain = false;
    out.push(unescape(text.slice(done, i)), found.text);
    done = i = found.end;
    fresh = true;
  }
  out.push(unescape(text.slice(done)));
  return { text: out.join(''), plain };
}

/** The inline construct (or the lone start-string docutils reports) at `i`, if one starts there. */
function inlineAt(text: string, i: number): { text: string; end: number } | undefined {
  const two = text.slice(i, i + 2);
  const start = two === '**' ? '**' : two === '``' ? '``' : two === '_`' ? '_`' : text[i] === '*' ? '*' : text[i] === '|' && text[i + 1] !== '|' ? '|' : undefined;
  if (start !== undefined && !(text[i + start.length] !== undefined && isPySpace(text[i + start.length]))) {
    const from = i + start.length;
    if (quoted(text, i, from)) return { text: unescape(text.slice(i, from)), end: from };
    const end = END[start as keyof typeof END].exec(text.slice(from));
    if (!end || end.index === 0) return { text: start, end: from }; // start-string without end-string: a warning
    const inner = text.slice(from, from + end.index);
    const textEnd = from + end.index + end[0].length;
    if (start === '``') return { text: unescape(inner, true), end: textEnd };
    if (start === '|') return { text: `|${unescape(inner)}|`, end: textEnd };
    return { text: unescape(inner), end: textEnd };
  }
  WHOLE.lastIndex = i;
  const whole = WHOLE.exec(text);
  if (whole) return { text: unescape(whole.groups!.refname ?? whole.groups!.label), end: i + whole[0].length };
  BACKQUOTE.lastIndex = i;
  const quote = BACKQUOTE.exec(text);
  if (quote) {
    const from = i + quote[0].length;
    if (!quote.groups!.role && quoted(text, from - 1, from)) return { text: '`', end: from };
    const end = END['`'].exec(text.slice(from));
    if (!end || end.index === 0) return { text: '`', end: from };
    const inner = text.slice(from, from + end.index);
    // A phrase reference with an embedded target reads as its text, or as the target when it has none.
    const embedded = end.groups!.refend ? /^(?<label>[\s\S]*?)(?:^|[ \n]+)<(?<target>[^<>]+)>$/.exec(inner) : null;
    const label = embedded ? embedded.groups!.label || embedded.groups!.target : inner;
    return { text: unescape(label), end: from + end.index + end[0].length };
  }
  return undefined;
}

const PY_BLANK = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const isBlankText = (line: string): boolean => line === '' || PY_BLANK.test(line);

/**
 * A reStructuredText cell's lines (as cut out of the table) as docutils reads them: paragraphs joined with a blank
 * line, escapes removed, inline markup reduced to its text. Anything that is not a plain paragraph (a list, a
 * comment, a transition, a literal-block marker, a section title) is not plain; its text is a close reading.
 */
export function readRstCell(lines: string[]): CellText {
  let a = 0;
  let b = lines.length;
  while (a < b && isBlankText(lines[a])) a++;
  while (b > a && isBlankText(lines[b - 1])) b--;
  if (a === b) return { text: '', plain: true };
  const paragraphs: string[][] = [];
  for (let i = a; i < b; i++) {
    if (isBlankText(lines[i])) continue;
    if (i === a || isBlankText(lines[i - 1])) paragraphs.push([]);
    paragraphs[paragraphs.length - 1].push(lines[i]);
  }
  let plain = true;
  const texts = paragraphs.map((p) => {
    const result = readRstParagraph(p);
    plain &&= result.plain;
    return result.text;
  });
  return { text: texts.join('\n\n'), plain };
}

function readRstParagraph(lines: string[]): CellText {
  const indent = (line: string): number => line.length - line.trimStart().length;
  let plain = lines.every((l) => indent(l) === indent(lines[0]));
  const trimmed = lines.map((l) => l.trim());
  const kind = rstBlockStart(trimmed[0]);
  if (kind) plain = false;
  if (trimmed.length > 1 && RST_BLOCK_STARTS[RST_BLOCK_STARTS.length - 1][1].test(trimmed[1])) plain = false;
  if (kind && trimmed.length === 1 && ['bullet', 'enumerator', 'explicit markup'].includes(kind)) {
    trimmed[0] = trimmed[0].replace(/^(\S+)\s*/, '');
  }
  let data = trimmed.join('\n');
  if (RST_LITERAL_MARKER.test(data)) {
    plain = false;
    data = data.length === 2 ? '' : ' \n'.includes(data[data.length - 3]) ? data.slice(0, -3).trimEnd() : data.slice(0, -1);
  }
  const inline = readRstInline(data);
  return { text: inline.text, plain: plain && inline.plain };
}

/** Markup that GitHub would render in a table cell, outside backslash escapes. */
const MARKDOWN_MARKUP = /[*`[<~$]|&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/u;

/**
 * A Markdown cell's raw text as GitHub reads it: trimmed, `\|` unescaped first (the table does that before inline
 * parsing), then backslash escapes of ASCII punctuation. Other inline markup is kept as written and is not plain.
 */
export function readMarkdownCell(raw: string): CellText {
  const trimmed = raw.trim();
  if (!/[\\*`[<~$&_]/.test(trimmed)) return { text: trimmed, plain: true };
  const pipes = trimmed.replaceAll('\\|', '|');
  const plain = !MARKDOWN_MARKUP.test(pipes.replace(/\\[!-/:-@[-`{-~]/g, ''));
  return { text: pipes.replace(/\\([!-/:-@[-`{-~])/g, '$1'), plain };
}
