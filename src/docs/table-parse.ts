// Finds and parses the tables of a document: RST simple and grid tables the way docutils 0.19 does
// (docutils/parsers/rst/tableparser.py and the isolate_* steps in states.py, on display columns), and
// Markdown pipe tables the way GitHub does. Keeps the layout so that table.ts can edit a table in place.
// Rows keep only where they are, and a table's lines are read from the document when asked for: a cell's text is
// made when it is read, so a huge table costs little memory. The parsers proper are rst-simple-table.ts and
// rst-grid-table.ts; what a cell's text reads as is cell-text.ts.
import { readMarkdownCell, readRstCell, type CellText } from './cell-text.js';
import { parseGridBlock, type GridCells, GridRows } from './rst-grid-table.js';
import { parseSimpleBlock } from './rst-simple-table.js';
import { GRID_TOP, RowList, SIMPLE_BORDER, SIMPLE_TOP, SourceBlock, TableMarkupError, get2DBlock, type Block, type Cell, type ParsedRow } from './table-block.js';
import { prepareLine, units, type SourceLines } from './text-width.js';

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

/** A Markdown table's: it is read from its source lines. */
const NO_BLOCK: Block = { length: 0, line: () => '' };

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


