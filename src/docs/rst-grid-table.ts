// docutils' GridTableParser (docutils/parsers/rst/tableparser.py) on display columns; cells kept as columns of numbers.
import { findHeadSeparator, GRID_HEAD_SEP, IntList, Overlay, RowRange, TableMarkupError, type Block, type Cell, type ParsedRow } from './table-block.js';
import { units } from './text-width.js';

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
export class GridRows extends RowRange {
  constructor(
    private readonly grid: GridCells,
    from: number,
    to: number,
  ) {
    super(from, to);
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
