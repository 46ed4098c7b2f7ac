// Finds and parses the tables of a document: RST simple and grid tables the way docutils 0.19 does
// (docutils/parsers/rst/tableparser.py and the isolate_* steps in states.py, on display columns), and
// Markdown pipe tables the way GitHub does. Keeps the layout so that table.ts can edit a table in place.
import {
  colsText,
  isBlankCols,
  leadingBlank,
  prepareLine,
  rstripCols,
  toCols,
  type Cols,
  type SourceLine,
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
  /** Body rows; `line` is the row's first line in the file. A cell spanning columns sits in its first column, the rest ''. */
  rows: { cells: string[]; line: number }[];
}

/** A cell as the parsers see it: its extent in block coordinates (grid: border lines/columns). */
export interface Cell {
  morerows: number;
  morecols: number;
  /** Block line of the cell's first text line. */
  offset: number;
  lines: string[];
  text: string;
  top: number;
  left: number;
  bottom: number;
  right: number;
}

export interface ParsedRow {
  /** One per column; null where a spanning cell covers it. */
  cells: (Cell | null)[];
  /** Block lines the row occupies (simple tables: from its first text line up to the next row). */
  first: number;
  count: number;
  /** Simple tables: the column spec the row was parsed with (spans), as [start, end) pairs. */
  columns?: [number, number][];
}

export interface ParsedTable {
  table: Table;
  /** Index (0-based) of the first and last source line of the table. */
  start: number;
  end: number;
  indent: string;
  /** The table's lines as docutils sees them, indentation removed, as display columns. */
  block: Cols[];
  headRows: ParsedRow[];
  bodyRows: ParsedRow[];
  /** Column boundaries: simple tables [start, end) per column from the top border; grid: '+' positions. */
  columns: [number, number][];
  /** Grid tables: the line of the head/body separator (block index). Markdown: per-column alignment text. */
  headSep?: number;
}

export interface Problem {
  line: number;
  message: string;
}

export class TableMarkupError extends Error {
  constructor(
    message: string,
    readonly offset = 0,
  ) {
    super(message);
  }
}

const SIMPLE_TOP = /^=+( +=+)+ *$/;
const SIMPLE_BORDER = /^=+[ =]*$/;
const GRID_TOP = /^\+-[-+]+-\+ *$/;
const GRID_HEAD_SEP = /^\+=[=+]+=\+ *$/;
const SIMPLE_HEAD_SEP = /^=[ =]*$/;
const SPAN_LINE = /^-[ -]*$/;

const str = (cols: Cols): string => cols.join('');

function cellText(lines: string[]): string {
  return lines.join('\n').trim();
}

/** docutils' StringList.get_2D_block on display columns: slice, right-strip, remove the common indent, drop PAD. */
function get2DBlock(block: Cols[], top: number, left: number, bottom: number, right: number): string[] {
  const slices = block.slice(top, bottom).map((line) => rstripCols(line.slice(left, right)));
  let indent = right;
  for (const s of slices) if (s.length > 0) indent = Math.min(indent, leadingBlank(s));
  const lines = indent > 0 && indent < right ? slices.map((s) => s.slice(indent)) : slices;
  return lines.map((s) => colsText(s));
}

function makeCell(lines: string[], partial: Omit<Cell, 'lines' | 'text'>): Cell {
  return { ...partial, lines, text: cellText(lines) };
}

// ---------------------------------------------------------------- RST simple tables

interface SimpleRaw {
  cells: Cell[];
  first: number;
  count: number;
  columns: [number, number][];
}

/**
 * Finds the one head/body separator line (`pattern`) of a table block, as both docutils parsers do, and turns its
 * `=` into `-` in place so the rest of the parse sees an ordinary border.
 */
function findHeadSeparator(block: Cols[], pattern: RegExp): number | undefined {
  let headSep: number | undefined;
  for (let i = 0; i < block.length; i++) {
    if (!pattern.test(str(block[i]))) continue;
    if (headSep) throw new TableMarkupError(`Multiple head/body row separators (table lines ${headSep + 1} and ${i + 1}); only one allowed.`, i);
    headSep = i;
    block[i] = block[i].map((c) => (c === '=' ? '-' : c));
  }
  if (headSep === 0 || headSep === block.length - 1) {
    throw new TableMarkupError('The head/body row separator may not be the first or last line of the table.');
  }
  return headSep;
}

/** Port of docutils' SimpleTableParser on display columns. */
export function parseSimpleBlock(input: Cols[]): { head: SimpleRaw[]; body: SimpleRaw[]; columns: [number, number][]; headSep?: number } {
  const block = input.map((l) => [...l]);
  const dashes = (l: Cols): Cols => l.map((c) => (c === '=' ? '-' : c));
  block[0] = dashes(block[0]);
  block[block.length - 1] = dashes(block[block.length - 1]);
  const headSep = findHeadSeparator(block, SIMPLE_HEAD_SEP);

  let columns: [number, number][] = [];
  const parseColumns = (line: Cols, offset: number): [number, number][] => {
    const cols: [number, number][] = [];
    let end = 0;
    for (;;) {
      const begin = line.indexOf('-', end);
      if (begin < 0) break;
      end = line.indexOf(' ', begin);
      if (end < 0) end = line.length;
      cols.push([begin, end]);
    }
    if (columns.length > 0) {
      if (cols.length === 0 || cols[cols.length - 1][1] !== borderEnd) {
        throw new TableMarkupError(`Column span incomplete in table line ${offset + 1}.`, offset);
      }
      cols[cols.length - 1] = [cols[cols.length - 1][0], columns[columns.length - 1][1]];
    }
    return cols;
  };
  let borderEnd = 0;
  columns = parseColumns(block[0], 0);
  borderEnd = columns[columns.length - 1][1];
  const topColumns = columns.map((c) => [...c] as [number, number]);

  const table: SimpleRaw[] = [];
  const checkColumns = (lines: Cols[], firstLine: number, cols: [number, number][]): void => {
    const all: [number, number][] = [...cols, [Number.MAX_SAFE_INTEGER, 0]];
    const lastcol = all.length - 2;
    for (let i = 0; i < all.length - 1; i++) {
      const [start, end] = all[i];
      const nextstart = all[i + 1][0];
      lines.forEach((line, offset) => {
        if (i === lastcol && !isBlankCols(line.slice(end))) {
          const text = rstripCols(line.slice(start));
          const newEnd = start + text.length;
          const [mainStart, mainEnd] = columns[columns.length - 1];
          all[i] = [start, Math.max(mainEnd, newEnd)];
          if (newEnd > mainEnd) columns[columns.length - 1] = [mainStart, newEnd];
        } else if (!isBlankCols(line.slice(end, nextstart))) {
          throw new TableMarkupError(`Text in column margin in table line ${firstLine + offset + 1}.`, firstLine + offset);
        }
      });
    }
    for (let i = 0; i < cols.length; i++) cols[i] = all[i];
  };
  const initRow = (colspec: [number, number][], offset: number): Cell[] => {
    let i = 0;
    const cells: Cell[] = [];
    for (const [start, end] of colspec) {
      let morecols = 0;
      if (i >= columns.length || start !== columns[i][0]) {
        throw new TableMarkupError(`Column span alignment problem in table line ${offset + 2}.`, offset + 1);
      }
      while (end !== columns[i][1]) {
        i++;
        morecols++;
        if (i >= columns.length) throw new TableMarkupError(`Column span alignment problem in table line ${offset + 2}.`, offset + 1);
      }
      cells.push(makeCell([], { morerows: 0, morecols, offset, top: offset, left: start, bottom: offset, right: end }));
      i++;
    }
    return cells;
  };
  const parseRow = (lines: Cols[], start: number, spanline?: [Cols, number]): void => {
    const cols = spanline ? parseColumns(rstripCols(spanline[0]), spanline[1]) : columns.map((c) => [...c] as [number, number]);
    checkColumns(lines, start, cols);
    const row = initRow(cols, start);
    cols.forEach(([s, e], i) => {
      const cellLines = get2DBlock(lines, 0, s, lines.length, e);
      row[i] = { ...row[i], lines: cellLines, text: cellText(cellLines), bottom: start + lines.length };
    });
    table.push({ cells: row, first: start, count: lines.length, columns: cols });
  };

  const [firstStart, firstEnd] = columns[0];
  let start = 1;
  let textFound = false;
  for (let offset = 1; offset < block.length; offset++) {
    const line = block[offset];
    if (SPAN_LINE.test(str(line))) {
      parseRow(block.slice(start, offset), start, [line, offset]);
      start = offset + 1;
      textFound = false;
    } else if (!isBlankCols(line.slice(firstStart, firstEnd))) {
      if (textFound && offset !== start) parseRow(block.slice(start, offset), start);
      start = offset;
      textFound = true;
    } else if (!textFound) {
      start = offset + 1;
    }
  }

  let firstBody = 0;
  if (headSep) {
    for (let i = 0; i < table.length; i++) {
      if (table[i].cells[0].offset > headSep) {
        firstBody = i;
        break;
      }
    }
  }
  // The top border's columns: `columns` may have grown through text overflowing the last column.
  return { head: table.slice(0, firstBody), body: table.slice(firstBody), columns: topColumns, headSep };
}

// ---------------------------------------------------------------- RST grid tables

/** Port of docutils' GridTableParser on display columns. */
export function parseGridBlock(input: Cols[]): { rows: (Cell | null)[][]; rowseps: number[]; colseps: number[]; headRowCount: number; headSep?: number } {
  const block = input.map((l) => [...l]);
  const bottom = block.length - 1;
  const right = block[0].length - 1;
  const headSep = findHeadSeparator(block, GRID_HEAD_SEP);
  const at = (i: number, j: number): string | undefined => block[i][j];
  const done: number[] = new Array<number>(block[0].length).fill(-1);
  const rowseps = new Set<number>([0]);
  const colseps = new Set<number>([0]);
  const cells: Cell[] = [];

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
    const line = block[bot];
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
    const line = block[top];
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

  const corners: [number, number][] = [[0, 0]];
  while (corners.length > 0) {
    const [top, left] = corners.shift()!;
    if (top === bottom || left === right || top <= done[left]) continue;
    if (at(top, left) !== '+') continue;
    const result = scanRight(top, left);
    if (!result) continue;
    result.rowseps.forEach((r) => rowseps.add(r));
    result.colseps.forEach((c) => colseps.add(c));
    for (let col = left; col < result.right; col++) {
      if (done[col] !== top - 1) throw new TableMarkupError('Malformed table; parse incomplete.');
      done[col] = result.bottom - 1;
    }
    const lines = get2DBlock(block, top + 1, left + 1, result.bottom, result.right);
    cells.push(makeCell(lines, { morerows: 0, morecols: 0, offset: top + 1, top, left, bottom: result.bottom, right: result.right }));
    corners.push([top, result.right], [result.bottom, left]);
    corners.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }
  for (let col = 0; col < right; col++) {
    if (done[col] !== bottom - 1) throw new TableMarkupError('Malformed table; parse incomplete.');
  }

  const rs = [...rowseps].sort((a, b) => a - b);
  const cs = [...colseps].sort((a, b) => a - b);
  const rowIndex = new Map(rs.map((r, i) => [r, i]));
  const colIndex = new Map(cs.map((c, i) => [c, i]));
  const rows: (Cell | null)[][] = Array.from({ length: rs.length - 1 }, () => new Array<Cell | null>(cs.length - 1).fill(null));
  for (const cell of cells) {
    const r = rowIndex.get(cell.top)!;
    const c = colIndex.get(cell.left)!;
    cell.morerows = rowIndex.get(cell.bottom)! - r - 1;
    cell.morecols = colIndex.get(cell.right)! - c - 1;
    rows[r][c] = cell;
  }
  let headRowCount = 0;
  if (headSep) {
    const index = rowIndex.get(headSep);
    if (index === undefined) throw new TableMarkupError('The head/body row separator does not run across the whole table.', headSep);
    headRowCount = index;
  }
  return { rows, rowseps: rs, colseps: cs, headRowCount, headSep };
}

// ---------------------------------------------------------------- finding tables in a document

/** Directives whose content docutils/Sphinx do not parse as reStructuredText (so a table there is just text). */
const LITERAL_DIRECTIVES = new Set([
  'code', 'code-block', 'sourcecode', 'literalinclude', 'highlight', 'parsed-literal', 'raw', 'math', 'csv-table',
  'graphviz', 'digraph', 'graph', 'uml', 'mermaid', 'doctest', 'testcode', 'testoutput', 'testsetup', 'testcleanup',
  'ipython', 'jupyter-execute', 'prompt', 'productionlist',
]);

interface Prepared {
  text: string;
  indent: number;
  blank: boolean;
}

function prepare(lines: SourceLine[]): Prepared[] {
  return lines.map((l) => {
    const text = prepareLine(l.raw);
    return { text, indent: /^ */.exec(text)![0].length, blank: text === '' };
  });
}

/** Lines docutils would not read as body text at this level: literal blocks, comments, code directives. */
function skipLiteral(pre: Prepared[], i: number, indent: number): number {
  let j = i + 1;
  while (j < pre.length && (pre[j].blank || pre[j].indent > indent)) j++;
  // Trailing blank lines belong to what follows.
  while (j - 1 > i && pre[j - 1].blank) j--;
  return j;
}

function rel(p: Prepared, indent: number): string {
  return p.blank ? '' : p.text.slice(indent);
}

export function findTables(lines: SourceLine[], syntax: Syntax = 'auto'): { tables: ParsedTable[]; problems: Problem[] } {
  const pre = prepare(lines);
  const tables: ParsedTable[] = [];
  const problems: Problem[] = [];
  if (syntax !== 'markdown') findRstTables(pre, tables, problems);
  if (syntax !== 'rst') {
    const taken = new Set<number>();
    for (const t of tables) for (let i = t.start; i <= t.end; i++) taken.add(i);
    findMarkdownTables(lines, pre, taken, tables);
  }
  tables.sort((a, b) => a.start - b.start);
  return { tables, problems };
}

function findRstTables(pre: Prepared[], tables: ParsedTable[], problems: Problem[]): void {
  let prevBlank = true;
  let prevIndent = 0;
  let i = 0;
  while (i < pre.length) {
    const p = pre[i];
    if (p.blank) {
      prevBlank = true;
      i++;
      continue;
    }
    const content = p.text.slice(p.indent);
    const startsBlock = prevBlank || p.indent !== prevIndent;
    if (startsBlock && (SIMPLE_TOP.test(content) || GRID_TOP.test(content))) {
      const simple = SIMPLE_TOP.test(content);
      const result = simple ? isolateSimple(pre, i, p.indent) : isolateGrid(pre, i, p.indent);
      if ('error' in result) {
        problems.push({ line: i + 1 + (result.offset ?? 0), message: result.error });
        i = result.resume;
      } else {
        try {
          tables.push(buildTable(i, result.end, p.indent, simple ? 'rst-simple' : 'rst-grid', result.block));
        } catch (error) {
          if (!(error instanceof TableMarkupError)) throw error;
          problems.push({ line: i + 1 + error.offset, message: `Malformed table. ${error.message}` });
        }
        i = result.end + 1;
      }
      prevBlank = false;
      prevIndent = p.indent;
      continue;
    }
    const directive = /^\.\.\s+([\w.:+-]+?)::(\s|$)/.exec(content);
    const isComment = /^\.\.(\s|$)/.test(content) && !directive && !/^\.\.\s+(_|\[|\|)/.test(content);
    if ((directive && LITERAL_DIRECTIVES.has(directive[1].toLowerCase())) || isComment || (content.endsWith('::') && !directive)) {
      i = skipLiteral(pre, i, p.indent);
      prevBlank = false;
      prevIndent = p.indent;
      continue;
    }
    prevBlank = false;
    prevIndent = p.indent;
    i++;
  }
}

type Isolated = { end: number; block: Cols[] } | { error: string; resume: number; offset?: number };

function isolateSimple(pre: Prepared[], start: number, indent: number): Isolated {
  const toplen = pre[start].text.trim().length;
  let limit = pre.length - 1;
  for (let j = start + 1; j < pre.length; j++) {
    if (!pre[j].blank && pre[j].indent < indent) {
      limit = j - 1;
      break;
    }
  }
  let found = 0;
  let foundAt = -1;
  let end = -1;
  for (let i = start + 1; i <= limit; i++) {
    const line = rel(pre[i], indent);
    if (SIMPLE_BORDER.test(line)) {
      if (line.trim().length !== toplen) {
        return { error: 'Malformed table. Bottom/header table border does not match top border.', resume: i + 1, offset: 0 };
      }
      found++;
      foundAt = i;
      if (found === 2 || i === limit || pre[i + 1].blank) {
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
  const block: Cols[] = [];
  for (let i = start; i <= end; i++) block.push(toCols(rel(pre[i], indent)));
  return { end, block };
}

function isolateGrid(pre: Prepared[], start: number, indent: number): Isolated {
  let j = start;
  while (j < pre.length && !pre[j].blank && pre[j].indent === indent) j++;
  let block = [];
  for (let i = start; i < j; i++) block.push(toCols(pre[i].text.slice(indent)));
  const width = block[0].length;
  for (let i = 0; i < block.length; i++) {
    if (block[i][0] !== '+' && block[i][0] !== '|') {
      block = block.slice(0, i);
      break;
    }
  }
  if (!GRID_TOP.test(str(block[block.length - 1]))) {
    let cut = -1;
    for (let i = block.length - 2; i > 1; i--) {
      if (GRID_TOP.test(str(block[i]))) {
        cut = i;
        break;
      }
    }
    if (cut < 0) return { error: 'Malformed table.', resume: start + block.length };
    block = block.slice(0, cut + 1);
  }
  for (const line of block) {
    if (line.length !== width || (line[line.length - 1] !== '+' && line[line.length - 1] !== '|')) {
      return { error: 'Malformed table.', resume: start + block.length };
    }
  }
  return { end: start + block.length - 1, block };
}

function expandRow(cells: (Cell | null)[]): string[] {
  return cells.map((c) => (c ? c.text : ''));
}

function joinHead(rows: ParsedRow[], width: number): string[] {
  if (rows.length === 0) return [];
  const header: string[] = [];
  for (let c = 0; c < width; c++) header.push(rows.map((r) => r.cells[c]?.text ?? '').filter((t) => t !== '').join('\n'));
  return header;
}

function buildTable(start: number, end: number, indent: number, format: TableFormat, block: Cols[]): ParsedTable {
  let headRows: ParsedRow[];
  let bodyRows: ParsedRow[];
  let columns: [number, number][];
  let headSep: number | undefined;
  if (format === 'rst-simple') {
    const parsed = parseSimpleBlock(block);
    columns = parsed.columns;
    headSep = parsed.headSep;
    const toRow = (r: SimpleRaw): ParsedRow => {
      const cells: (Cell | null)[] = [];
      for (const cell of r.cells) {
        cells.push(cell);
        for (let k = 0; k < cell.morecols; k++) cells.push(null);
      }
      return { cells, first: r.first, count: r.count, columns: r.columns };
    };
    headRows = parsed.head.map(toRow);
    bodyRows = parsed.body.map(toRow);
  } else {
    const parsed = parseGridBlock(block);
    headSep = parsed.headSep;
    columns = parsed.colseps.slice(1).map((c, i) => [parsed.colseps[i], c]);
    const rows = parsed.rows.map((cells, r) => ({ cells, first: parsed.rowseps[r] + 1, count: parsed.rowseps[r + 1] - parsed.rowseps[r] - 1 }));
    headRows = rows.slice(0, parsed.headRowCount);
    bodyRows = rows.slice(parsed.headRowCount);
  }
  const width = columns.length;
  const table: Table = {
    format,
    startLine: start + 1,
    endLine: end + 1,
    header: joinHead(headRows, width),
    rows: bodyRows.map((r) => ({ cells: expandRow(r.cells), line: start + r.first + 1 })),
  };
  return { table, start, end, indent: ' '.repeat(indent), block, headRows, bodyRows, columns, headSep };
}

// ---------------------------------------------------------------- Markdown pipe tables

const MD_DELIMITER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** Splits a pipe-table line into raw cells (untrimmed), honouring backslash-escaped pipes. */
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
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '|') {
      current += '\\|';
      i++;
    } else if (text[i] === '|') {
      cells.push(current);
      current = '';
    } else {
      current += text[i];
    }
  }
  cells.push(current);
  return { cells, leading, trailing };
}

export const mdCellText = (raw: string): string => raw.trim().replaceAll('\\|', '|');

function findMarkdownTables(lines: SourceLine[], pre: Prepared[], taken: Set<number>, tables: ParsedTable[]): void {
  let fence: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].raw;
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
    if (fence !== null) {
      if (fenceMatch && fenceMatch[1][0] === fence[0] && fenceMatch[1].length >= fence.length && raw.trim() === fenceMatch[1]) fence = null;
      continue;
    }
    if (fenceMatch) {
      fence = fenceMatch[1];
      continue;
    }
    if (taken.has(i) || i + 1 >= lines.length || taken.has(i + 1)) continue;
    if (!raw.includes('|') || !MD_DELIMITER.test(lines[i + 1].raw) || !lines[i + 1].raw.includes('-')) continue;
    if (/^ {4,}/.test(raw)) continue;
    const header = splitPipes(raw).cells;
    const delimiter = splitPipes(lines[i + 1].raw).cells;
    if (header.length !== delimiter.length) continue;
    let end = i + 1;
    while (end + 1 < lines.length && !pre[end + 1].blank && lines[end + 1].raw.includes('|') && !taken.has(end + 1)) end++;
    const width = header.length;
    const norm = (cells: string[]): string[] => {
      const out = cells.slice(0, width).map(mdCellText);
      while (out.length < width) out.push('');
      return out;
    };
    const rows: Table['rows'] = [];
    for (let r = i + 2; r <= end; r++) rows.push({ cells: norm(splitPipes(lines[r].raw).cells), line: r + 1 });
    tables.push({
      table: { format: 'markdown', startLine: i + 1, endLine: end + 1, header: norm(header), rows },
      start: i,
      end,
      indent: '',
      block: [],
      headRows: [],
      bodyRows: [],
      columns: [],
    });
    i = end;
  }
}
