// Writes a key and value into a table: the text escaped for the table's syntax, and the table's lines rewritten
// around it in each syntax (the edited row, and every line when a column must widen), made when they are written.
import { rstBlockStart, RST_LITERAL_MARKER } from './cell-text.js';
import { SIMPLE_BORDER, SPAN_LINE, type Block, type Cell, type ParsedRow } from './table-block.js';
import { columnCount, rowCells, rowLine, splitPipes, type ParsedTable } from './table-parse.js';
import {
  colsEqual,
  colsText,
  concatCols,
  displayWidth,
  fillCols,
  isBlankCols,
  isPySpace,
  prepareLine,
  rstripCols,
  sliceCols,
  spliceCols,
  toCols,
  units,
  type Cols,
  type SourceLines,
} from './text-width.js';
import { UserError } from '../user-error.js';

/** An expected failure: the document or the request cannot be edited safely. The message says what to do. */
export class TableError extends UserError {
  override name = 'TableError';
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

/** A line of the edited table: a source line kept byte for byte (its index), or new text (standing for `from`). */
export type NewLine = number | { text: string; from?: number };

/** The edited table's lines, made one at a time as they are written: a widened long table is many new lines. */
export interface Rewrite {
  lines(): Iterable<NewLine>;
  /** How many units a line may grow by (the columns a widening adds), to size the output once. */
  growth: number;
}

export interface Edit {
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

export function editSimple(edit: Edit): Rewrite {
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

export function editGrid(edit: Edit): Rewrite {
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

export function editMarkdown(edit: Edit): Rewrite {
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
