// What the table parsers share: a table's lines read from the document as display columns when asked for, its
// rows and cells, the border lines docutils recognises, and the steps both of docutils' parsers take.
import { colsText, leadingBlank, prepareLine, Recent, rstripCols, sliceCols, toCols, units, type Cols, type SourceLines } from './text-width.js';
import { UserError } from '../user-error.js';

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

/** Rows [from, to) of a parser's numbered rows: `row(i)` reads row `from + i`. */
export abstract class RowRange extends RowList {
  constructor(
    protected readonly from: number,
    protected readonly to: number,
  ) {
    super();
  }
  get length(): number {
    return this.to - this.from;
  }
}

export class TableMarkupError extends UserError {
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

/** A table's lines read from the document: from `first` on, prepared as docutils does and cut at the indentation. */
export class SourceBlock implements Block {
  private readonly recent: Recent<Cols>;
  constructor(
    source: SourceLines,
    first: number,
    readonly length: number,
    level: number,
  ) {
    this.recent = new Recent(length, (i) => toCols(prepareLine(source.text(first + i)).slice(level)));
  }
  line(i: number): Cols {
    return this.recent.get(i);
  }
}

/** A block with some lines read differently (a parser's own copy, where a separator's `=` become `-`). */
export class Overlay implements Block {
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
export class IntList {
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

// The border lines of RST tables, as docutils recognises them.
export const SIMPLE_TOP = /^=+( +=+)+ *$/;
export const SIMPLE_BORDER = /^=+[ =]*$/;
export const GRID_TOP = /^\+-[-+]+-\+ *$/;
export const GRID_HEAD_SEP = /^\+=[=+]+=\+ *$/;
export const SIMPLE_HEAD_SEP = /^=[ =]*$/;
export const SPAN_LINE = /^-[ -]*$/;

/** docutils' StringList.get_2D_block on display columns: slice, right-strip, remove the common indent, drop PAD. */
export function get2DBlock(block: Block, top: number, left: number, bottom: number, right: number): string[] {
  const slices: Cols[] = [];
  for (let i = top; i < bottom; i++) slices.push(rstripCols(sliceCols(block.line(i), left, right)));
  let indent = right;
  for (const s of slices) if (units(s).length > 0) indent = Math.min(indent, leadingBlank(s));
  const cut = indent > 0 && indent < right ? indent : 0;
  return slices.map((s) => colsText(s, cut));
}

export const dashes = (line: Cols): Cols =>
  typeof line === 'string' ? line.replaceAll('=', '-') : line.s.includes('=') ? { ...line, s: line.s.replaceAll('=', '-') } : line;

/**
 * Finds the one head/body separator line (`pattern`) of a table block, as both docutils parsers do, and turns its
 * `=` into `-` in place so the rest of the parse sees an ordinary border.
 */
export function findHeadSeparator(block: Overlay, pattern: RegExp): number | undefined {
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
