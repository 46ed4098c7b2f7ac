// What a table cell says: its source text read as docutils (reStructuredText inline markup, escapes, block
// constructs) or GitHub (Markdown escapes and inline markup) would show it, and whether it is plain text.
import { GRID_TOP, SIMPLE_TOP } from './table-block.js';
import { isPySpace } from './text-width.js';

/** A cell's text as a reader sees it, and whether it is plain: no markup at all, so it reads exactly as written. */
export interface CellText {
  text: string;
  plain: boolean;
}

// The constructs docutils recognises at the start of a line (states.py, Body.patterns), in its order.
const OPTARG = String.raw`(?:[a-zA-Z][a-zA-Z0-9_-]*|<[^<>]+>)`;
const OPTION = String.raw`(?:[-+][a-zA-Z0-9](?: ?${OPTARG})?|(?:--|/)[a-zA-Z0-9][a-zA-Z0-9_-]*(?:[ =]${OPTARG})?)`;
const ENUM = String.raw`(?:\d+|[a-zA-Z]|[ivxlcdm]+|[IVXLCDM]+|#)`;
const RST_BLOCK_STARTS: [string, RegExp][] = [
  ['bullet', /^[-+*\u2022\u2023\u2043]( +|$)/],
  ['enumerator', new RegExp(String.raw`^(?:\(${ENUM}\)|${ENUM}[.)])( +|$)`)],
  ['field', /^:(?![: ])(?:[^:\\]|\\.|:(?![ `]|$))*(?<! ):( +|$)/],
  // An option with nothing after it is text (docutils takes it back when no description follows).
  ['option', new RegExp(String.raw`^${OPTION}(?:, ${OPTION})*  +\S`)],
  ['doctest', /^>>>( +|$)/],
  ['line block', /^\|( +|$)/],
  ['grid table', GRID_TOP],
  ['simple table', SIMPLE_TOP],
  ['explicit markup', /^\.\.( +|$)/],
  ['anonymous target', /^__( +|$)/],
  ['transition or section adornment', /^([!-/:-@[-`{-~])\1* *$/],
];

/** What docutils would make of a line that starts a block (a list, a comment, a transition...), if anything. */
export function rstBlockStart(line: string): string | undefined {
  const first = line.charCodeAt(0);
  // Only an enumerator starts with a letter or digit, and only a bullet with a character beyond ASCII.
  if (/^[a-zA-Z0-9]/.test(line)) return RST_BLOCK_STARTS[1][1].test(line) ? 'enumerator' : undefined;
  if (first > 0x7f) return RST_BLOCK_STARTS[0][1].test(line) ? 'bullet' : undefined;
  return RST_BLOCK_STARTS.find(([, pattern]) => pattern.test(line))?.[0];
}

/** A paragraph ending in an unescaped '::' announces a literal block (states.py, Body.paragraph). */
export const RST_LITERAL_MARKER = /(?<!\\)(\\\\)*::$/;

// Inline markup recognition (docutils' Inliner): start-strings need whitespace, an opener or a delimiter before
// them; end-strings need whitespace, a closer or a delimiter after. docutils lists the non-ASCII punctuation by
// Unicode category; the categories stand in for its lists here.
const PY_SPACE_CLASS = String.raw`\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const NON_ASCII_PUNCT = /^[\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Pd}\p{Po}]$/u;
const END_SUFFIX = String.raw`(?=$|[${PY_SPACE_CLASS}\0\\.,;!?\-/:"')>\]}]|(?![\0-\x7f])[\p{Pe}\p{Pf}\p{Pi}\p{Pd}\p{Po}])`;
const SIMPLENAME = String.raw`[\p{L}\p{N}]+(?:[-._+:][\p{L}\p{N}]+)*`;
const WHOLE = new RegExp(String.raw`(?:(?<refname>${SIMPLENAME})(?<refend>__?)|\[(?<label>[0-9]+|#(?:${SIMPLENAME})?|\*|${SIMPLENAME})\]_)${END_SUFFIX}`, 'uy');
const BACKQUOTE = new RegExp(String.raw`(?<role>:${SIMPLENAME}:)?\x60(?!\x60)(?![${PY_SPACE_CLASS}])`, 'uy');
const END = {
  '**': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\*\*${END_SUFFIX}`, 'u'),
  '*': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\*${END_SUFFIX}`, 'u'),
  '``': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}])\x60\x60${END_SUFFIX}`, 'u'),
  '_`': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\x60${END_SUFFIX}`, 'u'),
  '|': new RegExp(String.raw`(?<![${PY_SPACE_CLASS}\0])\|_{0,2}${END_SUFFIX}`, 'u'),
  '`': new RegExp(String.raw`(?<!(?<!\0)[${PY_SPACE_CLASS}\0])\x60(?<suffix>(?<role>:${SIMPLENAME}:)?(?<refend>__?)?)${END_SUFFIX}`, 'u'),
};
const OPENERS: Record<string, string> = { '"': '"', "'": "'", '(': ')', '<': '>', '[': ']', '{': '}', '\u00ab': '\u00bb', '\u2018': '\u2019\u201a', '\u201c': '\u201d\u201e', '\u2039': '\u203a', '\u00bb': '\u00bb', '\u2019': '\u2019', '\u201a': '\u2018\u2019', '\u201e': '\u201c\u201d', '\u201d': '\u201d', '\u203a': '\u203a' };

function startPrefixOk(ch: string | undefined): boolean {
  return ch === undefined || isPySpace(ch) || `"'(<[{\\-/:`.includes(ch) || (ch > '\x7f' && NON_ASCII_PUNCT.test(ch));
}

/** Rule 5: a start-string between a matching pair ("*", (*)) is not markup; nor is one at the very end. */
function quoted(text: string, start: number, end: number): boolean {
  if (start === 0) return false;
  if (end >= text.length) return true;
  const before = text[start - 1];
  const after = text[end];
  if (OPENERS[before]?.includes(after)) return true;
  const cp = before.codePointAt(0)!;
  return /^\p{Ps}$/u.test(before) && after.codePointAt(0) === cp + 1;
}

/** docutils' escape2null: a backslash and the character after it become NUL and that character. */
function escape2null(text: string): string {
  return text.includes('\\') ? text.replace(/\\(.|\n)?/gsu, (_, ch: string | undefined) => `\0${ch ?? ''}`) : text;
}

/** docutils' unescape: NULs go, and so does escaped whitespace. */
function unescape(text: string, restoreBackslashes = false): string {
  if (!text.includes('\0')) return text;
  if (restoreBackslashes) return text.replaceAll('\0', '\\');
  return text.replaceAll('\0 ', '').replaceAll('\0\n', '').replaceAll('\0', '');
}

const INLINE_HINT = /[\\*`|_[]/;

/** One paragraph's inline markup reduced to its text, as docutils' astext() gives it before references resolve. */
function readRstInline(source: string): CellText {
  if (!INLINE_HINT.test(source)) return { text: source, plain: true };
  const text = escape2null(source);
  const out: string[] = [];
  let plain = true;
  let done = 0; // text before this is in `out`
  let i = 0;
  let fresh = true; // just after a construct: docutils starts a new search there, so '^' matches
  while (i < text.length) {
    if (!fresh && !startPrefixOk(text[i - 1])) {
      i++;
      continue;
    }
    fresh = false;
    const found = inlineAt(text, i);
    if (!found) {
      i++;
      continue;
    }
    plain = false;
    out.push(unescape(text.slice(done, i)), found.text);
    done = i = found.end;
    fresh = true;
  }
  out.push(unescape(text.slice(done)));
  return { text: out.join(''), plain };
}

/** The inline construct (or the lone start-string docutils reports) at `i`, if one starts there. */
function inlineAt(text: string, i: number): { text: string; end: number } | undefined {
  const two = text.slice(i, i + 2);
  const start = two === '**' ? '**' : two === '``' ? '``' : two === '_`' ? '_`' : text[i] === '*' ? '*' : text[i] === '|' && text[i + 1] !== '|' ? '|' : undefined;
  if (start !== undefined && !(text[i + start.length] !== undefined && isPySpace(text[i + start.length]))) {
    const from = i + start.length;
    if (quoted(text, i, from)) return { text: unescape(text.slice(i, from)), end: from };
    const end = END[start as keyof typeof END].exec(text.slice(from));
    if (!end || end.index === 0) return { text: start, end: from }; // start-string without end-string: a warning
    const inner = text.slice(from, from + end.index);
    const textEnd = from + end.index + end[0].length;
    if (start === '``') return { text: unescape(inner, true), end: textEnd };
    if (start === '|') return { text: `|${unescape(inner)}|`, end: textEnd };
    return { text: unescape(inner), end: textEnd };
  }
  WHOLE.lastIndex = i;
  const whole = WHOLE.exec(text);
  if (whole) return { text: unescape(whole.groups!.refname ?? whole.groups!.label), end: i + whole[0].length };
  BACKQUOTE.lastIndex = i;
  const quote = BACKQUOTE.exec(text);
  if (quote) {
    const from = i + quote[0].length;
    if (!quote.groups!.role && quoted(text, from - 1, from)) return { text: '`', end: from };
    const end = END['`'].exec(text.slice(from));
    if (!end || end.index === 0) return { text: '`', end: from };
    const inner = text.slice(from, from + end.index);
    // A phrase reference with an embedded target reads as its text, or as the target when it has none.
    const embedded = end.groups!.refend ? /^(?<label>[\s\S]*?)(?:^|[ \n]+)<(?<target>[^<>]+)>$/.exec(inner) : null;
    const label = embedded ? embedded.groups!.label || embedded.groups!.target : inner;
    return { text: unescape(label), end: from + end.index + end[0].length };
  }
  return undefined;
}

const PY_BLANK = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const isBlankText = (line: string): boolean => line === '' || PY_BLANK.test(line);

/**
 * A reStructuredText cell's lines (as cut out of the table) as docutils reads them: paragraphs joined with a blank
 * line, escapes removed, inline markup reduced to its text. Anything that is not a plain paragraph (a list, a
 * comment, a transition, a literal-block marker, a section title) is not plain; its text is a close reading.
 */
export function readRstCell(lines: string[]): CellText {
  let a = 0;
  let b = lines.length;
  while (a < b && isBlankText(lines[a])) a++;
  while (b > a && isBlankText(lines[b - 1])) b--;
  if (a === b) return { text: '', plain: true };
  const paragraphs: string[][] = [];
  for (let i = a; i < b; i++) {
    if (isBlankText(lines[i])) continue;
    if (i === a || isBlankText(lines[i - 1])) paragraphs.push([]);
    paragraphs[paragraphs.length - 1].push(lines[i]);
  }
  let plain = true;
  const texts = paragraphs.map((p) => {
    const result = readRstParagraph(p);
    plain &&= result.plain;
    return result.text;
  });
  return { text: texts.join('\n\n'), plain };
}

function readRstParagraph(lines: string[]): CellText {
  const indent = (line: string): number => line.length - line.trimStart().length;
  let plain = lines.every((l) => indent(l) === indent(lines[0]));
  const trimmed = lines.map((l) => l.trim());
  const kind = rstBlockStart(trimmed[0]);
  if (kind) plain = false;
  if (trimmed.length > 1 && RST_BLOCK_STARTS[RST_BLOCK_STARTS.length - 1][1].test(trimmed[1])) plain = false;
  if (kind && trimmed.length === 1 && ['bullet', 'enumerator', 'explicit markup'].includes(kind)) {
    trimmed[0] = trimmed[0].replace(/^(\S+)\s*/, '');
  }
  let data = trimmed.join('\n');
  if (RST_LITERAL_MARKER.test(data)) {
    plain = false;
    data = data.length === 2 ? '' : ' \n'.includes(data[data.length - 3]) ? data.slice(0, -3).trimEnd() : data.slice(0, -1);
  }
  const inline = readRstInline(data);
  return { text: inline.text, plain: plain && inline.plain };
}

/** Markup that GitHub would render in a table cell, outside backslash escapes. */
const MARKDOWN_MARKUP = /[*`[<~$]|&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/u;

/**
 * A Markdown cell's raw text as GitHub reads it: trimmed, `\|` unescaped first (the table does that before inline
 * parsing), then backslash escapes of ASCII punctuation. Other inline markup is kept as written and is not plain.
 */
export function readMarkdownCell(raw: string): CellText {
  const trimmed = raw.trim();
  if (!/[\\*`[<~$&_]/.test(trimmed)) return { text: trimmed, plain: true };
  const pipes = trimmed.replaceAll('\\|', '|');
  const plain = !MARKDOWN_MARKUP.test(pipes.replace(/\\[!-/:-@[-`{-~]/g, ''));
  return { text: pipes.replace(/\\([!-/:-@[-`{-~])/g, '$1'), plain };
}
