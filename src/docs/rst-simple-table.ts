// docutils' SimpleTableParser (docutils/parsers/rst/tableparser.py) on display columns.
import { dashes, findHeadSeparator, IntList, Overlay, RowList, RowRange, SIMPLE_HEAD_SEP, SPAN_LINE, TableMarkupError, type Block, type ParsedRow } from './table-block.js';
import { isBlankCols, rstripCols, units, type Cols } from './text-width.js';

/** Rows [from, to) of lists of first lines and line counts; rows under a span line keep their column spec aside. */
class CompactRows extends RowRange {
  constructor(
    private readonly first: Int32Array,
    private readonly count: Int32Array,
    private readonly spans: Map<number, [number, number][]>,
    from: number,
    to: number,
  ) {
    super(from, to);
  }
  row(i: number): ParsedRow {
    const n = this.from + i;
    const columns = this.spans.get(n);
    return columns ? { first: this.first[n], count: this.count[n], columns } : { first: this.first[n], count: this.count[n] };
  }
}

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
