// Parses an Apptainer definition file into stages, headers and sections, splitting it the way
// apptainer 1.4 does, so that the linter and the build planner see what apptainer will see.

export interface HeaderEntry {
  /** The key as written (apptainer compares keys case-insensitively). */
  key: string;
  /** The value, trimmed, with a trailing `# comment` removed and `\` continuations joined. */
  value: string;
  line: number;
}

export interface Section {
  /** Lowercased, without the leading `%`: 'post', 'environment', 'appinstall', or an unknown name. */
  name: string;
  /** For %app* sections: the app name (`%apprun foo` -> 'foo'). */
  app?: string;
  /** The rest of the section line after the name (and app name), trimmed. */
  args: string;
  /** 1-based line of the `%name` line. */
  line: number;
  /** 1-based line of the first body line (the line after `%name`). */
  bodyStartLine: number;
  /** The body exactly as written, lines joined with \n, without trailing blank lines. */
  body: string;
  /** Last non-blank line of the section (the `%name` line when the body is empty). */
  endLine: number;
  /** The `%name ...` line as written (without line break), for checks on spacing and case. */
  raw: string;
}

export interface Stage {
  headers: HeaderEntry[];
  sections: Section[];
  /** 1-based line where the stage starts (its `Bootstrap:` line, when it has one). */
  line: number;
  /** 1-based last line that belongs to the stage (blank lines included). */
  endLine: number;
  /** From the `Stage:` header. */
  name?: string;
  /** The `Bootstrap:` agent, lowercased (apptainer itself only accepts lowercase). */
  bootstrap?: string;
  from?: string;
  /** `NAME=default` lines of this stage's %arguments; apptainer applies them to this stage only. */
  argumentsDefaults: Record<string, string>;
  /** Header-area lines that are not `Key: value`; apptainer rejects the file for them. */
  invalidHeaderLines: { line: number; text: string }[];
}

export interface TemplateVar {
  name: string;
  line: number;
  column: number;
  /** Index into Definition.stages, or -1 for text that belongs to no stage (leading comments). */
  stage: number;
  /**
   * True when apptainer leaves this placeholder as it is because an earlier `#` on its line
   * (not `#!`) looks like a comment to it; such placeholders need no value.
   */
  commented: boolean;
}

export interface Definition {
  stages: Stage[];
  templateVars: TemplateVar[];
  /** All stages' %arguments defaults merged (a later stage wins); see Stage.argumentsDefaults. */
  argumentsDefaults: Record<string, string>;
}

/** Standard sections apptainer 1.4 accepts (case-insensitively); `pre` is a legacy host script. */
export const STANDARD_SECTIONS = [
  'setup', 'files', 'environment', 'post', 'runscript', 'startscript', 'test', 'labels', 'help',
  'arguments', 'pre',
] as const;

/** SCIF app sections; apptainer only recognises them in lowercase, and each needs an app name. */
export const APP_SECTIONS = [
  'appinstall', 'appfiles', 'appenv', 'apphelp', 'applabels', 'apprun', 'apptest', 'appstart',
] as const;

const appSectionNames: ReadonlySet<string> = new Set(APP_SECTIONS);

/** Case-insensitive header lookup; the last entry wins, as in apptainer's header map. */
export function header(stage: Stage, key: string): string | undefined {
  const wanted = key.toLowerCase();
  let found: string | undefined;
  for (const entry of stage.headers) {
    if (entry.key.toLowerCase() === wanted) found = entry.value;
  }
  return found;
}

/** Splits text into lines the way Go's bufio.ScanLines does: on \n, dropping one trailing \r. */
export function splitLines(text: string): string[] {
  const lines = stripBom(text).split('\n');
  // A final newline does not start another line.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

export function hasBom(text: string): boolean {
  return text.charCodeAt(0) === 0xfeff;
}

function stripBom(text: string): string {
  return hasBom(text) ? text.slice(1) : text;
}

// Apptainer starts a new stage at every line that begins with `bootstrap:` (any case), even
// inside a section body; leading whitespace or a space before the colon does not count.
const stageStart = /^bootstrap:/i;

// A section starts at any line whose first word begins with `%` (Go's ScanWords skips leading
// whitespace, so indented lines split sections too — apptainer then rejects them).
function isSectionLine(line: string): boolean {
  return /^\s*%/.test(line);
}

function isBlankOrComment(line: string): boolean {
  const t = line.trim();
  return t === '' || t.startsWith('#');
}

export function parseDefinition(text: string): Definition {
  const lines = splitLines(text);

  // Chunk boundaries (0-based line indexes) exactly where apptainer splits stages.
  const starts = [0];
  lines.forEach((l, i) => {
    if (i > 0 && stageStart.test(l)) starts.push(i);
  });
  const chunks = starts.map((start, k) => ({ start, end: k + 1 < starts.length ? starts[k + 1] : lines.length }));

  const stages: Stage[] = [];
  const stageOfLine: number[] = new Array<number>(lines.length).fill(-1);
  for (const chunk of chunks) {
    const chunkLines = lines.slice(chunk.start, chunk.end);
    // Text before the first Bootstrap that holds only comments is no stage for apptainer.
    if (!stageStart.test(chunkLines[0] ?? '') && chunkLines.every(isBlankOrComment)) continue;
    const index = stages.length;
    for (let i = chunk.start; i < chunk.end; i++) stageOfLine[i] = index;
    stages.push(parseStage(chunkLines, chunk.start));
  }

  const argumentsDefaults: Record<string, string> = {};
  for (const stage of stages) Object.assign(argumentsDefaults, stage.argumentsDefaults);

  return { stages, templateVars: findTemplateVars(stripBom(text), stageOfLine), argumentsDefaults };
}

function parseStage(lines: string[], offset: number): Stage {
  const firstSection = lines.findIndex(isSectionLine);
  const headerEnd = firstSection === -1 ? lines.length : firstSection;
  const { headers, invalid } = parseHeaders(lines.slice(0, headerEnd), offset);

  const sections: Section[] = [];
  for (let i = headerEnd; i < lines.length; ) {
    let next = i + 1;
    while (next < lines.length && !isSectionLine(lines[next])) next++;
    sections.push(parseSection(lines, i, next, offset));
    i = next;
  }

  const firstContent = lines.findIndex((l) => !isBlankOrComment(l));
  const stage: Stage = {
    headers,
    sections,
    line: offset + (firstContent === -1 ? 0 : firstContent) + 1,
    endLine: offset + lines.length,
    argumentsDefaults: {},
    invalidHeaderLines: invalid,
  };
  const name = header(stage, 'stage');
  if (name !== undefined) stage.name = name;
  const bootstrap = header(stage, 'bootstrap');
  if (bootstrap !== undefined) stage.bootstrap = bootstrap.toLowerCase();
  const from = header(stage, 'from');
  if (from !== undefined) stage.from = from;
  for (const s of sections) {
    if (s.name === 'arguments') Object.assign(stage.argumentsDefaults, parseArguments(s.body).values);
  }
  return stage;
}

function parseHeaders(lines: string[], offset: number): { headers: HeaderEntry[]; invalid: { line: number; text: string }[] } {
  const headers: HeaderEntry[] = [];
  const invalid: { line: number; text: string }[] = [];
  // A value ending in `\` continues on the next line, as in apptainer's doHeader.
  let pending: HeaderEntry | undefined;

  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) {
      if (pending) headers.push(pending);
      pending = undefined;
      return;
    }
    const content = line.split('#')[0];
    if (pending) {
      pending.value += content.trim();
      if (pending.value.endsWith('\\')) {
        pending.value = pending.value.slice(0, -1);
      } else {
        headers.push(pending);
        pending = undefined;
      }
      return;
    }
    const colon = content.indexOf(':');
    if (colon === -1) {
      invalid.push({ line: offset + i + 1, text: line });
      return;
    }
    const entry = { key: content.slice(0, colon).trim(), value: content.slice(colon + 1).trim(), line: offset + i + 1 };
    if (entry.value.endsWith('\\')) {
      entry.value = entry.value.slice(0, -1);
      pending = entry;
    } else {
      headers.push(entry);
    }
  });
  if (pending) headers.push(pending);
  return { headers, invalid };
}

function parseSection(lines: string[], start: number, end: number, offset: number): Section {
  const raw = lines[start];
  // Apptainer strips every leading `%`; words are split on any whitespace here, and the linter
  // separately reports the spacing apptainer would not accept.
  const words = raw.trim().replace(/^%+/, '');
  const nameMatch = /^(\S*)\s*(.*)$/.exec(words) ?? ['', '', ''];
  const name = nameMatch[1].toLowerCase();
  let args = nameMatch[2].trim();
  let app: string | undefined;
  if (appSectionNames.has(name)) {
    const appMatch = /^(\S+)\s*(.*)$/.exec(args);
    if (appMatch) {
      app = appMatch[1];
      args = appMatch[2].trim();
    }
  }

  let last = end - 1;
  while (last > start && lines[last].trim() === '') last--;
  const section: Section = {
    name,
    args,
    line: offset + start + 1,
    bodyStartLine: offset + start + 2,
    body: lines.slice(start + 1, last + 1).join('\n'),
    endLine: offset + last + 1,
    raw,
  };
  if (app !== undefined) section.app = app;
  return section;
}

export interface ArgumentEntry {
  key: string;
  value: string;
  /** 0-based line within the section body. */
  line: number;
}

export interface SkippedArgumentLine {
  /** 0-based line within the section body. */
  line: number;
  text: string;
  problem: 'no-equals' | 'empty-key';
}

/** Reads `NAME=default` lines as apptainer's ReadDefaults does, and the lines it would skip. */
export function parseArguments(body: string): { values: Record<string, string>; entries: ArgumentEntry[]; skipped: SkippedArgumentLine[] } {
  const values: Record<string, string> = {};
  const entries: ArgumentEntry[] = [];
  const skipped: SkippedArgumentLine[] = [];
  body.split('\n').forEach((raw, i) => {
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    const eq = text.indexOf('=');
    if (eq === -1) {
      skipped.push({ line: i, text, problem: 'no-equals' });
      return;
    }
    const key = text.slice(0, eq).trim();
    if (key === '') {
      skipped.push({ line: i, text, problem: 'empty-key' });
      return;
    }
    const value = text.slice(eq + 1).trim();
    values[key] = value;
    entries.push({ key, value, line: i });
  });
  return { values, entries, skipped };
}

// Apptainer's placeholder pattern, with Go's \s and \w spelled out.
const placeholder = /\{\{[\t\n\f\r ]*([0-9A-Za-z_]+)[\t\n\f\r ]*\}\}/g;

function findTemplateVars(text: string, stageOfLine: number[]): TemplateVar[] {
  const vars: TemplateVar[] = [];
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);

  // Apptainer's comment test looks back from a placeholder to the last newline, but never past
  // the end of the last placeholder it replaced; a `#` followed by anything but `!` there makes it
  // skip the placeholder.
  let lastReplacedEnd = 0;
  let lineIndex = 0;
  for (const m of text.matchAll(placeholder)) {
    const at = m.index;
    const newline = text.lastIndexOf('\n', at - 1);
    const from = Math.max(lastReplacedEnd, newline === -1 ? 0 : newline);
    const commented = /#[^!]/.test(text.slice(from, at));
    if (!commented) lastReplacedEnd = at + m[0].length;

    while (lineIndex + 1 < lineStarts.length && lineStarts[lineIndex + 1] <= at) lineIndex++;
    vars.push({
      name: m[1],
      line: lineIndex + 1,
      column: at - lineStarts[lineIndex] + 1,
      stage: stageOfLine[lineIndex] ?? -1,
      commented,
    });
  }
  return vars;
}
