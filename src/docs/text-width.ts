// Character widths and line handling as docutils sees them: East Asian wide and fullwidth characters take two
// columns, characters with a non-zero canonical combining class take none, tabs expand to 8 and lines lose
// trailing whitespace (docutils.statemachine.string2lines and pad_double_width).
import { eastAsianWidthType } from 'get-east-asian-width';

/** Python's str.isspace() set, which docutils' strip()/rstrip() use (JavaScript's \s differs: U+FEFF, U+001C-1F, U+0085). */
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;

export function isPySpace(ch: string): boolean {
  return PY_SPACE.test(ch);
}

export function isWide(codePoint: number): boolean {
  const type = eastAsianWidthType(codePoint);
  return type === 'wide' || type === 'fullwidth';
}

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
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    // A wide combining character (U+302A..U+302F) still leaves docutils' pad column behind.
    width += (isWide(cp) ? 2 : 1) - (isCombining(cp) ? 1 : 0);
  }
  return width;
}

/**
 * A line as an array of display columns: each entry is one column's character followed by any combining
 * marks; the second column of a wide character is PAD (docutils pads with NUL too, and PAD counts as text).
 */
export type Cols = string[];
export const PAD = '\0';

export function toCols(text: string): Cols {
  const cols: Cols = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isCombining(cp) && cols.length > 0) cols[cols.length - 1] += ch;
    else cols.push(ch);
    if (isWide(cp)) cols.push(PAD);
  }
  return cols;
}

export function colsText(cols: Cols): string {
  return cols.join('').replaceAll(PAD, '');
}

/** Python's `not s.strip()` for a column entry: only its base character counts (marks ride along). */
export function isBlankCol(entry: string | undefined): boolean {
  return entry === undefined || isPySpace(entry[0]);
}

export function isBlankCols(cols: Cols): boolean {
  return cols.every((c) => isBlankCol(c));
}

export function rstripCols(cols: Cols): Cols {
  let end = cols.length;
  while (end > 0 && isBlankCol(cols[end - 1])) end--;
  return cols.slice(0, end);
}

export function leadingBlank(cols: Cols): number {
  let i = 0;
  while (i < cols.length && isBlankCol(cols[i])) i++;
  return i;
}

/** Python's str.expandtabs(8): tab stops every 8 code points. */
export function expandTabs(text: string, tabWidth = 8): string {
  if (!text.includes('\t')) return text;
  let out = '';
  let column = 0;
  for (const ch of text) {
    if (ch === '\t') {
      const n = tabWidth - (column % tabWidth);
      out += ' '.repeat(n);
      column += n;
    } else {
      out += ch;
      column += 1;
    }
  }
  return out;
}

/** What docutils makes of a source line before any parsing: \v\f become spaces, tabs expand, trailing space goes. */
export function prepareLine(raw: string): string {
  let text = expandTabs(raw.replace(/[\v\f]/g, ' '));
  let end = text.length;
  while (end > 0 && isPySpace(text[end - 1])) end--;
  text = text.slice(0, end);
  return text;
}

export interface SourceLine {
  /** The line without its terminator, byte for byte. */
  raw: string;
  /** '\n', '\r\n' or '' (the last line of a file without a final newline). */
  eol: string;
}

export function splitSourceLines(text: string): SourceLine[] {
  if (text === '') return [];
  const lines: SourceLine[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      lines.push({ raw: text.slice(start), eol: '' });
      break;
    }
    const cr = nl > start && text[nl - 1] === '\r';
    lines.push({ raw: text.slice(start, cr ? nl - 1 : nl), eol: cr ? '\r\n' : '\n' });
    start = nl + 1;
  }
  return lines;
}
