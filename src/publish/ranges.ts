// What of the image is on the server: byte ranges [start, end) the server confirmed writing, merged and sorted.
// A striped upload writes disjoint ranges of one partial file over several channels, so after a cut the file's
// size says nothing (it has holes); the confirmed ranges are kept in a small record beside the partial
// (`.NAME.partial.ranges`), written only after the writes it lists were acknowledged.
import { createHash } from 'node:crypto';

export interface Range {
  start: number;
  end: number;
}

/** Sorted, merged, non-empty ranges. */
export class RangeMap {
  private list: Range[] = [];

  constructor(ranges: Range[] = []) {
    for (const r of ranges) this.add(r.start, r.end);
  }

  get ranges(): readonly Range[] {
    return this.list;
  }

  /** Bytes covered. */
  get total(): number {
    return this.list.reduce((n, r) => n + r.end - r.start, 0);
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const out: Range[] = [];
    let merged = { start, end };
    for (const r of this.list) {
      if (r.end < merged.start || r.start > merged.end) out.push(r);
      else merged = { start: Math.min(r.start, merged.start), end: Math.max(r.end, merged.end) };
    }
    out.push(merged);
    this.list = out.sort((a, b) => a.start - b.start);
  }

  covers(start: number, end: number): boolean {
    return end <= start || this.list.some((r) => r.start <= start && r.end >= end);
  }

  /** What of [0, size) is missing. */
  gaps(size: number): Range[] {
    const out: Range[] = [];
    let at = 0;
    for (const r of this.list) {
      if (r.start >= size) break;
      if (r.start > at) out.push({ start: at, end: r.start });
      at = Math.max(at, r.end);
    }
    if (at < size) out.push({ start: at, end: size });
    return out;
  }

  /** The end of the range that starts at 0: the offset a sequential upload resumes from. */
  prefix(): number {
    return this.list[0]?.start === 0 ? this.list[0].end : 0;
  }

  clone(): RangeMap {
    return new RangeMap(this.list);
  }
}

/**
 * The missing bytes as a queue of pieces in offset order, shared by the channels: each channel takes the next piece
 * when it has room, so a slower channel takes fewer, and the file fills from the front. That is what lets segment
 * verification overlap the upload: a segment is complete, and hashed on the server, while the next is being sent.
 * Pieces start on `align` boundaries (a gap's own start aside) and are at most `piece` bytes. Shared by several
 * channels (`sharedBy`), the pieces taper towards the end, down to `align`, so the channels run out of work within
 * a small piece of each other rather than a whole one (4 MiB is two round trips of a window-bound channel, during
 * which the channels done early would stand idle).
 */
export class PieceQueue {
  private readonly pieces: Range[] = [];
  private taken = 0;
  private left = 0;
  /** Called once, when the last piece is taken (its writes, and others', are still to be answered). */
  onDrained?: () => void;
  /** The channels taking pieces from this queue. */
  sharedBy = 1;

  constructor(
    gaps: readonly Range[],
    piece = 4 * 1024 * 1024,
    private readonly align = 1024 * 1024,
  ) {
    for (const gap of gaps) {
      this.left += gap.end - gap.start;
      for (let at = gap.start; at < gap.end; ) {
        const cut = this.boundaryBefore(at + piece);
        const end = Math.min(gap.end, cut > at ? cut : at + piece);
        this.pieces.push({ start: at, end });
        at = end;
      }
    }
  }

  /** The pieces not yet taken (as cut so far): an upper bound on the channels worth opening. */
  get remaining(): number {
    return this.pieces.length - this.taken;
  }

  next(): Range | undefined {
    if (this.taken >= this.pieces.length) return undefined;
    if (this.sharedBy > 1) {
      // What is left spread over the channels twice over: pieces shrink once the channels' last turns come near.
      const head = this.pieces[this.taken];
      const cut = this.boundaryBefore(head.start + Math.max(this.boundaryBefore(this.left / (2 * this.sharedBy)), this.align));
      if (cut > head.start && cut < head.end) this.pieces.splice(this.taken, 1, { start: head.start, end: cut }, { start: cut, end: head.end });
    }
    const piece = this.pieces[this.taken++];
    this.left -= piece.end - piece.start;
    if (this.taken === this.pieces.length) this.onDrained?.();
    return piece;
  }

  /** The last `align` boundary at or before `at`. */
  private boundaryBefore(at: number): number {
    return Math.floor(at / this.align) * this.align;
  }
}

const MAGIC = 'build-image ranges v1';

/**
 * The record kept beside the partial: a header with the body's length and sha256, so a torn or foreign record is
 * recognised (and then nothing is trusted), and the body: the image's size and the confirmed ranges.
 */
export function encodeRanges(size: number, map: RangeMap): Buffer {
  const body = JSON.stringify({ size, ranges: map.ranges.map((r) => [r.start, r.end]) });
  const digest = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${MAGIC} ${body.length} ${digest}\n${body}\n`);
}

/** The ranges a record confirms for an image of `size` bytes; undefined when the record is torn, foreign or for another size. */
export function decodeRanges(data: Buffer, size: number): RangeMap | undefined {
  const text = data.toString('utf8');
  const nl = text.indexOf('\n');
  const header = /^build-image ranges v1 (\d+) ([0-9a-f]{64})$/.exec(text.slice(0, nl));
  if (!header) return undefined;
  const body = text.slice(nl + 1, nl + 1 + Number(header[1]));
  if (body.length !== Number(header[1]) || createHash('sha256').update(body).digest('hex') !== header[2]) return undefined;
  try {
    const parsed = JSON.parse(body) as { size?: unknown; ranges?: unknown };
    if (parsed.size !== size || !Array.isArray(parsed.ranges)) return undefined;
    const map = new RangeMap();
    for (const r of parsed.ranges as unknown[]) {
      if (!Array.isArray(r) || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1])) return undefined;
      const [start, end] = r as [number, number];
      if (start < 0 || end > size || end < start) return undefined;
      map.add(start, end);
    }
    return map;
  } catch {
    return undefined;
  }
}
