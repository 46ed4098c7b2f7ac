// Character widths and line handling as docutils sees them: East Asian wide and fullwidth characters take two
// columns, characters with a non-zero canonical combining class take none, tabs expand to 8 and lines lose
// trailing whitespace (docutils.statemachine.string2lines and pad_double_width). Lines end at LF, CRLF or a lone
// CR, and a document given as bytes is split before it is decoded, so that untouched lines keep their bytes.
import { eastAsianWidthType } from 'get-east-asian-width';

/** Python's str.isspace() set, which docutils' strip()/rstrip() use (JavaScript's \s differs: U+FEFF, U+001C-1F, U+0085). */
export function isPySpace(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c >= 0x1c;
  if (c < 0x85) return false;
  return ch.length === 1 && (c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000);
}

export function isWide(codePoint: number): boolean {
  const type = eastAsianWidthType(codePoint);
  return type === 'wide' || type === 'fullwidth';
}

/** Latin-1 only: every character one column, none combining (the common case, tested first). */
const NARROW = /^[\0-\xff]*$/;

const combiningCache = new Map<number, boolean>();
// Characters whose canonical decomposition starts with a combining mark although they are starters themselves.
const STARTER_WITH_COMBINING_DECOMPOSITION = new Set([0x0f73, 0x0f75, 0x0f81]);

/**
 * Whether the character has a non-zero canonical combining class (Python's unicodedata.combining, which
 * docutils uses). JavaScript has no property for it, but canonical reordering reveals it: NFD moves a mark
 * with class 1..239 in front of U+0345 (class 240, the highest in use).
 */
export function isCombining(codePoint: number): boolean {
  if (codePoint < 0x300) return false;
  if (codePoint === 0x345) return true;
  let cached = combiningCache.get(codePoint);
  if (cached === undefined) {
    cached =
      !STARTER_WITH_COMBINING_DECOMPOSITION.has(codePoint) &&
      !('a\u0345' + String.fromCodePoint(codePoint)).normalize('NFD').startsWith('a\u0345');
    combiningCache.set(codePoint, cached);
  }
  return cached;
}

/** Columns a monospace rendering takes, by docutils' rule (utils.column_width). */
export function displayWidth(text: string): number {
  if (NARROW.test(text)) return text.length;
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    // A wide combining character (U+302A..U+302F) still leaves docutils' pad column behind.
    width += (isWide(cp) ? 2 : 1) - (isCombining(cp) ? 1 : 0);
  }
  return width;
}


/**
 * A line as display columns, one UTF-16 unit per column (`units`). The second column of a wide character is PAD
 * (docutils pads with NUL too, and PAD counts as text). A column one unit cannot hold (an astral character, a
 * character followed by combining marks, which ride along in its column) is CLUSTER there, or its base character
 * when that is a space, and its whole text is in `x` at the same index. Most lines need no `x` and are just a string.
 */
export type Cols = string | { readonly s: string; readonly x: readonly (string | undefined)[] };
export const PAD = '\0';
const CLUSTER = '\uFFFC';

export function units(cols: Cols): string {
  return typeof cols === 'string' ? cols : cols.s;
}

export function toCols(text: string): Cols {
  if (NARROW.test(text)) return text;
  const entries: string[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isCombining(cp) && entries.length > 0) entries[entries.length - 1] += ch;
    else entries.push(ch);
    if (isWide(cp)) entries.push(PAD);
  }
  let x: (string | undefined)[] | undefined;
  const s = entries
    .map((entry, i) => {
      if (entry.length === 1) return entry;
      (x ??= [])[i] = entry;
      return isPySpace(entry[0]) ? entry[0] : CLUSTER;
    })
    .join('');
  return x ? { s, x } : s;
}

/** The text of columns [from, to), PAD removed. */
export function colsText(cols: Cols, from = 0, to = Number.MAX_SAFE_INTEGER): string {
  let text: string;
  if (typeof cols === 'string') {
    text = from <= 0 && to >= cols.length ? cols : cols.slice(from, to);
  } else {
    const parts: string[] = [];
    for (let i = Math.max(0, from); i < Math.min(to, cols.s.length); i++) parts.push(cols.x[i] ?? cols.s[i]);
    text = parts.join('');
  }
  return text.includes(PAD) ? text.replaceAll(PAD, '') : text;
}

export function sliceCols(cols: Cols, from: number, to = Number.MAX_SAFE_INTEGER): Cols {
  if (typeof cols === 'string') return from <= 0 && to >= cols.length ? cols : cols.slice(from, to);
  if (from <= 0 && to >= cols.s.length) return cols;
  const x = cols.x.slice(Math.max(0, from), to);
  return x.some((e) => e !== undefined) ? { s: cols.s.slice(from, to), x } : cols.s.slice(from, to);
}

export function concatCols(...parts: Cols[]): Cols {
  const s = parts.map(units).join('');
  if (parts.every((p) => typeof p === 'string')) return s;
  const x: (string | undefined)[] = [];
  let at = 0;
  for (const p of parts) {
    if (typeof p !== 'string') p.x.forEach((e, i) => (x[at + i] = e));
    at += units(p).length;
  }
  return { s, x };
}

/** Replaces columns [from, to) with `insert`; a line shorter than `from` is padded with spaces first. */
export function spliceCols(cols: Cols, from: number, to: number, insert: Cols): Cols {
  const length = units(cols).length;
  const head = length < from ? concatCols(cols, ' '.repeat(from - length)) : sliceCols(cols, 0, from);
  return concatCols(head, insert, sliceCols(cols, Math.max(from, to)));
}

export function fillCols(n: number, ch: string): Cols {
  return ch.repeat(Math.max(0, n));
}

export function colsEqual(a: Cols, b: Cols): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.s !== b.s) return false;
  for (let i = 0; i < a.s.length; i++) if (a.x[i] !== b.x[i]) return false;
  return true;
}

/** Python's `not s.strip()` for a column: only its base character counts (marks ride along). */
export function isBlankCol(unit: string | undefined): boolean {
  return unit === undefined || isPySpace(unit);
}

export function isBlankCols(cols: Cols, from = 0, to = Number.MAX_SAFE_INTEGER): boolean {
  const s = units(cols);
  const end = Math.min(to, s.length);
  for (let i = Math.max(0, from); i < end; i++) if (!isPySpace(s[i])) return false;
  return true;
}

export function rstripCols(cols: Cols): Cols {
  const s = units(cols);
  let end = s.length;
  while (end > 0 && isPySpace(s[end - 1])) end--;
  return sliceCols(cols, 0, end);
}

export function leadingBlank(cols: Cols): number {
  const s = units(cols);
  let i = 0;
  while (i < s.length && isPySpace(s[i])) i++;
  return i;
}

/** Python's str.expandtabs(8): tab stops every 8 code points. */
export function expandTabs(text: string, tabWidth = 8): string {
  if (!text.includes('\t')) return text;
  const out: string[] = [];
  let column = 0;
  for (const ch of text) {
    if (ch === '\t') {
      const n = tabWidth - (column % tabWidth);
      out.push(' '.repeat(n));
      column += n;
    } else {
      out.push(ch);
      column += 1;
    }
  }
  return out.join('');
}

/** What docutils makes of a source line before any parsing: \v\f become spaces, tabs expand, trailing space goes. */
export function prepareLine(raw: string): string {
  const text = expandTabs(/[\v\f]/.test(raw) ? raw.replace(/[\v\f]/g, ' ') : raw);
  let end = text.length;
  while (end > 0 && isPySpace(text[end - 1])) end--;
  return end === text.length ? text : text.slice(0, end);
}

/**
 * A document's lines. LF, CRLF and a lone CR end a line, for docutils (Python's splitlines) and GitHub alike.
 * `start` counts in the source's own units (characters of a string, bytes of a buffer), so that an edit can copy
 * everything outside the lines it changes straight from the source. A line's text is cut out of the source when
 * asked for (the last few are kept): a long document is never held a second time as strings.
 */
export interface SourceLines {
  readonly length: number;
  /** Line i without its terminator. */
  text(i: number): string;
  /** Each line's terminator, an index into EOLS. */
  eol: Uint8Array;
  /** Where each line starts in the source; one more entry, the end of the lines. */
  start: Float64Array;
}

/** Line terminators: none (the last line of a file that does not end with one), LF, CRLF, CR. */
export const EOLS = ['', '\n', '\r\n', '\r'] as const;

/**
 * The values made last for some indexes (a slot per index modulo the size, at most 256): parsers read a line
 * several times in a row, and a short document is kept whole.
 */
export class Recent<T> {
  private readonly keys: Float64Array;
  private readonly values: T[];
  private readonly mask: number;
  constructor(
    length: number,
    private readonly make: (i: number) => T,
  ) {
    const size = Math.min(256, 2 ** Math.ceil(Math.log2(Math.max(1, length))));
    this.keys = new Float64Array(size).fill(-1);
    this.values = new Array<T>(size);
    this.mask = size - 1;
  }
  get(i: number): T {
    const slot = i & this.mask;
    if (this.keys[slot] === i) return this.values[slot];
    const value = this.make(i);
    this.keys[slot] = i;
    this.values[slot] = value;
    return value;
  }
}

class Lines implements SourceLines {
  private readonly recent: Recent<string>;
  constructor(
    readonly eol: Uint8Array,
    readonly start: Float64Array,
    decode: (a: number, b: number) => string,
  ) {
    this.recent = new Recent(eol.length, (i) => decode(start[i], start[i + 1] - EOLS[eol[i]].length));
  }
  get length(): number {
    return this.eol.length;
  }
  text(i: number): string {
    return this.recent.get(i);
  }
}

/**
 * Splits [from, to) of a document into lines: `search(unit, from)` finds a CR or LF at or after `from` (-1 when
 * none), `code(i)` is the unit at i and `decode` cuts out a line's text. Counting first keeps the index exact in size.
 */
function split(
  to: number,
  from: number,
  search: (unit: number, from: number) => number,
  code: (i: number) => number,
  decode: (a: number, b: number) => string,
): SourceLines {
  const find = (at: (from: number) => number, i: number): number => {
    const end = at(i);
    return end >= to ? -1 : end;
  };
  let at = nextBreak(search);
  let count = 0;
  for (let i = from; i < to; ) {
    const end = find(at, i);
    count++;
    if (end < 0) break;
    i = end + (code(end) === 0x0d && end + 1 < to && code(end + 1) === 0x0a ? 2 : 1);
  }
  const eol = new Uint8Array(count);
  const start = new Float64Array(count + 1);
  at = nextBreak(search);
  let i = from;
  for (let n = 0; n < count; n++) {
    const end = find(at, i);
    start[n] = i;
    if (end < 0) break;
    const crlf = code(end) === 0x0d && end + 1 < to && code(end + 1) === 0x0a;
    eol[n] = crlf ? 2 : code(end) === 0x0d ? 3 : 1;
    i = end + (crlf ? 2 : 1);
  }
  start[count] = to;
  return new Lines(eol, start, decode);
}

/** The next CR or LF at or after `from`, remembering both searches so that the scan stays linear. */
function nextBreak(search: (unit: number, from: number) => number): (from: number) => number {
  let lf = -2;
  let cr = -2;
  return (from) => {
    if (lf !== -1 && lf < from) lf = search(0x0a, from);
    if (cr !== -1 && cr < from) cr = search(0x0d, from);
    return lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
  };
}

/** Splits text (from `from`, which skips a byte order mark, to `to`) into lines. */
export function splitSourceLines(text: string, from = 0, to = text.length): SourceLines {
  const search = (unit: number, i: number): number => text.indexOf(unit === 0x0a ? '\n' : '\r', i);
  return split(to, from, search, (i) => text.charCodeAt(i), (a, b) => text.slice(a, b));
}

/**
 * Splits bytes into lines, each decoded as UTF-8 on its own when read: an invalid sequence reads as U+FFFD there
 * but never joins two lines, and CR and LF are never part of a multi-byte sequence, so lines match the bytes one to one.
 */
export function splitSourceBytes(bytes: Uint8Array, from = 0, to = bytes.length): SourceLines {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return split(to, from, (unit, i) => buf.indexOf(unit, i), (i) => buf[i], (a, b) => buf.toString('utf8', a, b));
}
