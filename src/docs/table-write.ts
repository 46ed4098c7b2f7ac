// Writes an edited document: everything outside the table copied from the source as it is, the table's new lines
// written one at a time as they are made, into a buffer (bytes) or joined text.
import type { ParsedTable } from './table-parse.js';
import type { NewLine, Rewrite } from './table-rewrite.js';
import { EOLS, type SourceLines } from './text-width.js';

/** Where the edited document is written: runs of the source copied, new text added. */
interface Sink {
  /** Units written so far. */
  readonly length: number;
  copy(from: number, to: number): void;
  write(text: string): void;
}

/** The new document as text; parts are joined as they pile up, so that a long table is not thousands of strings. */
export class TextSink implements Sink {
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
export class ByteSink implements Sink {
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
export interface Written {
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
export function writeEdit(lines: SourceLines, pt: ParsedTable, rewrite: Rewrite, sink: Sink, check?: (from: number) => void): Written {
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
  for (const line of rewrite.lines()) {
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
