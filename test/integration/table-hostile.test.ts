// Hostile keys and values (inline markup, list enumerators, comments, backslashes, rules of '=', CJK and emoji,
// pipes) written into RST simple and grid tables and Markdown pipe tables: the real docutils (Debian's
// python3-docutils) reads back exactly the text that was asked for, as a plain paragraph, or the edit is refused
// with a TableError and nothing changes. Every line outside the edited row keeps its bytes.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { editTable, editTableBytes, readTables, TableError, type Table, type TableEditSpec } from '../../src/docs/table.js';

const PYTHON = '/usr/bin/python3';
const helper = fileURLToPath(new URL('../helpers/docutils_tables.py', import.meta.url));
const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../fixtures/docs/${name}`, import.meta.url)), 'utf8');
const SIMPLE = fixture('preset-images.rst');
const GRID = fixture('preset-images-grid.rst');
const MARKDOWN = fixture('preset-images.md');

interface DocutilsTable {
  head: string[][];
  body: string[][];
  structure: string[][];
}
interface DocutilsResult {
  tables: DocutilsTable[];
  messages: { level: number; line: number | null; text: string }[];
}

function requireDocutils(): void {
  try {
    execFileSync(PYTHON, ['-c', 'import docutils'], { stdio: 'ignore' });
  } catch {
    throw new Error(`docutils is missing: ${PYTHON} cannot import docutils; install Debian's python3-docutils (apt-get install -y python3-docutils)`);
  }
}

/**
 * Many documents per Python process (starting it is the slow part), in two processes at once, with each body
 * cell's element names.
 */
async function docutils(sources: string[]): Promise<DocutilsResult[]> {
  const half = Math.ceil(sources.length / 2);
  const parts = await Promise.all(
    [sources.slice(0, half), sources.slice(half)].map(async (part) => {
      if (part.length === 0) return [];
      const child = promisify(execFile)(PYTHON, [helper, '--structure'], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
      child.child.stdin!.end(JSON.stringify(part));
      return (JSON.parse((await child).stdout) as { results: DocutilsResult[] }).results;
    }),
  );
  return parts.flat();
}

// ---------------------------------------------------------------- hostile text

/** Small seeded PRNG (mulberry32): the same cases every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts of a line that docutils reads as a block: enumerators, bullets, comments, options, fields, rules. */
const LEADS = ['1. ', '#. ', 'a) ', '(i) ', 'A. ', 'iv. ', '3) ', '.. ', '..', '- ', '* ', '+ ', '• ', '-x  ', '--all  ', '/V  ', ':f: ', '>>> ', '| ', '__ ', '_', '\\', '=', '+--+--+ ', '== == ', '::', '.. _t: '];
/** Inline markup and characters that mean something to one syntax or the other. */
const BODIES = [
  '/x.sif', '/lustre/`x`.sif', '/a\\b.sif', '*PyTorch*', '**b**', '``lit``', '`t`_', 'foo_', 'foo__', '_`t`', '|s|', '|s|_', '[1]_', '[#]_',
  '[*]_', '[CIT]_', ':r:`x`', '`x`:r:', 'x::', 'http://x/y_', 'a@b.cd', '分子动力学/镜像.sif', 'ＰｙＴｏｒｃｈ版', '🚀/x.sif', '👨‍👩‍👧', 'a|b', '|',
  '\\|', 'a\\', '\\\\', '==========', '----', '==', '=', '~~~~', '####', '&amp;', '<b>', '~~s~~', '$x$', 'my_image_.sif', '*', '`', '_', '\\',
  '::', '`a <http://x>`_', 'x ::', 'a\\ b', '"*"', '(*)', "'_'", '[link](http://x)', '![i](x.png)', '<http://x>', '*a*b*', 'a**b', 'a * b',
  'x_y_z', '_x_', '__init__.py', 'C:\\Program Files\\x.sif', '\\*', '\\`', '\\_', '\\\\|', '|a\\|b|', 'tab\\tname',
];
const TAILS = ['::', ' ::', '_', '__', '\\', ' =', '|', '*'];

function hostileValues(): string[] {
  const random = prng(13);
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const values = new Set<string>([...BODIES, ...LEADS.map((l) => l.trim() || '_'), ...LEADS.map((l) => `${l}/x.sif`)]);
  for (const tail of TAILS) values.add(`/x${tail}`);
  for (let i = 0; values.size < 360; i++) {
    const lead = random() < 0.5 ? pick(LEADS) : '';
    const tail = random() < 0.3 ? pick(TAILS) : '';
    values.add(`${lead}${pick(BODIES)}${random() < 0.3 ? ` ${pick(BODIES)}` : ''}${tail}`);
  }
  return [...values].filter((v) => v.trim() !== '');
}

// ---------------------------------------------------------------- cases

type Format = 'rst-simple' | 'rst-grid' | 'markdown';
const SOURCES: Record<Format, { text: string; key: string }> = {
  'rst-simple': { text: SIMPLE, key: 'VASP' },
  'rst-grid': { text: GRID, key: 'VASP' },
  markdown: { text: MARKDOWN, key: 'VASP' },
};

interface Case {
  format: Format;
  spec: TableEditSpec;
  source: string;
  text?: string;
  error?: string;
  description: string;
}

function runCase(format: Format, spec: TableEditSpec, source = SOURCES[format].text): Case {
  const description = `${format}: key ${JSON.stringify(spec.key)}, value ${JSON.stringify(spec.value)}`;
  const syntax = format === 'markdown' ? 'markdown' : 'rst';
  // The bytes API too: a refused edit must leave the caller's buffer as it was.
  const bytes = Buffer.from(source, 'utf8');
  const copy = Buffer.from(bytes);
  let viaBytes: string | undefined;
  try {
    viaBytes = editTableBytes(bytes, { ...spec, syntax }).bytes.toString('utf8');
  } catch (error) {
    if (!(error instanceof TableError)) throw error;
  }
  if (!bytes.equals(copy)) throw new Error(`${description}: editTableBytes changed its input`);
  try {
    const text = editTable(source, { ...spec, syntax }).text;
    if (text !== viaBytes) throw new Error(`${description}: editTable and editTableBytes disagree`);
    return { format, spec, source, text, description };
  } catch (error) {
    if (!(error instanceof TableError)) throw error;
    if (viaBytes !== undefined) throw new Error(`${description}: only editTable refused`, { cause: error });
    return { format, spec, source, error: error.message, description };
  }
}

function casesFor(format: Format, values: string[]): Case[] {
  const cases: Case[] = [];
  values.forEach((value, i) => {
    cases.push(runCase(format, { key: SOURCES[format].key, value }));
    cases.push(runCase(format, { key: value, value: `/lustre/share/img/new-${i}.sif` }));
    if (i % 3 === 0) cases.push(runCase(format, { key: `${value} ${i}`, value }));
  });
  return cases;
}

/** Lines with their terminators. */
const linesOf = (text: string): string[] => text.match(/[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$/g) ?? [];

/**
 * Whether the edit changed anything outside its table, or, when the table's first line is the same (no column
 * widened), anything but the edited row: a replaced row's own lines, or lines inserted at the table's end.
 */
function changedOutsideRow(c: Case, before: Table, after: Table): string | null {
  const a = linesOf(c.source);
  const b = linesOf(c.text!);
  const head = before.startLine - 1;
  const tail = a.length - before.endLine;
  const same = (x: string[], y: string[]): boolean => x.join('') === y.join('');
  if (!same(a.slice(0, head), b.slice(0, head))) return 'a line before the table changed';
  if (!same(a.slice(a.length - tail), b.slice(b.length - tail))) return 'a line after the table changed';
  if (a[head] !== b[head]) return null; // a column widened: the table's lines may all change
  const grew = b.length - a.length;
  const index = after.rows.findIndex((r, i) => JSON.stringify(r.cells) !== JSON.stringify(before.rows[i]?.cells));
  if (index < 0) return 'no row reads differently';
  if (index < before.rows.length) {
    // Replaced: the row's lines in the source run from its first line to the next row (or the bottom border).
    const first = before.rows[index].line - 1;
    const end = index + 1 < before.rows.length ? before.rows[index + 1].line - 1 : c.format === 'markdown' ? before.endLine : before.endLine - 1;
    if (!same(a.slice(0, first), b.slice(0, first)) || !same(a.slice(end), b.slice(end + grew))) return `lines outside the row at line ${first + 1} changed`;
    return null;
  }
  let at = head;
  while (at < a.length && a[at] === b[at]) at++;
  if (!same(a.slice(at), b.slice(at + grew))) return 'an append changed existing lines';
  return at >= before.endLine - 1 ? null : `the row was inserted at line ${at + 1}, not at the table's end`;
}

/** docutils' tables in the project's terms (head rows folded per column). */
function fold(t: DocutilsTable): { header: string[]; body: string[][] } {
  const width = (t.head[0] ?? t.body[0] ?? []).length;
  return { header: Array.from({ length: width }, (_, c) => t.head.map((r) => r[c]).filter((x) => x !== '').join('\n')), body: t.body };
}

/** The rows the edit should produce, from the table as it read before. */
function intended(before: Table, spec: TableEditSpec, keyColumn: number, valueColumn: number): string[][] {
  const rows = before.rows.map((r) => [...r.cells]);
  const key = spec.key.trim().toLowerCase().replace(/\s+/g, ' ');
  const hit = rows.findIndex((r) => r[keyColumn].toLowerCase().replace(/\s+/g, ' ') === key);
  if (hit >= 0) rows[hit][valueColumn] = spec.value.trim();
  else rows.push(rows[0].map((_, c) => (c === keyColumn ? spec.key.trim() : c === valueColumn ? spec.value.trim() : '')));
  return rows;
}

/** A cell docutils shows as just its text: a paragraph (a standalone URI or address inside it is a link). */
const PLAIN = /^paragraph(,reference)*$/;

describe('hostile keys and values in reStructuredText tables', () => {
  beforeAll(requireDocutils);
  const values = hostileValues();
  const cases = (['rst-simple', 'rst-grid'] as const).flatMap((format) => casesFor(format, values));
  // Line endings: CR-only and CRLF documents are edited and read the same way, and keep their endings.
  const endings = values.filter((_, i) => i % 7 === 0).flatMap((value, i) => [
    runCase('rst-simple', { key: 'PyTorch', value }, SIMPLE.replace(/\n/g, '\r')),
    runCase('rst-grid', { key: `k${i}`, value }, GRID.replace(/\n/g, '\r\n')),
  ]);
  const all = [...cases, ...endings];
  const edited = all.filter((c) => c.text !== undefined);

  test('cover every kind of hostile text, replacing and appending, and almost none is refused', () => {
    expect(values.length).toBeGreaterThan(350);
    for (const sample of ['1. /x.sif', '.. /x.sif', '/lustre/`x`.sif', '/a\\b.sif', '*PyTorch*', '==========', '🚀/x.sif', 'a|b', '\\\\', 'x::']) {
      expect(values).toContain(sample);
    }
    expect(cases.length).toBeGreaterThan(1600);
    expect(all.filter((c) => c.error).map((c) => `${c.description}: ${c.error}`)).toEqual([]);
  });

  test('docutils reads every edited table exactly as intended, the edited cells as plain text, with no message at all', async () => {
    const originals = await docutils([SIMPLE, GRID]);
    expect(originals.map((r) => r.messages)).toEqual([[], []]);
    const results = await docutils(edited.map((c) => c.text!));
    const problems: string[] = [];
    edited.forEach((c, i) => {
      const result = results[i];
      if (result.messages.length > 0) problems.push(`${c.description}: docutils says ${JSON.stringify(result.messages.map((m) => m.text))}`);
      const before = readTables(c.source)[0];
      const header = before.header;
      const k = header.indexOf('软件');
      const v = header.indexOf('位置');
      const expected = intended(before, c.spec, k, v);
      const table = result.tables[0];
      if (!table || JSON.stringify(fold(table)) !== JSON.stringify({ header, body: expected })) {
        problems.push(`${c.description}: docutils reads ${JSON.stringify(table?.body)} instead of ${JSON.stringify(expected)}\n${c.text}`);
        return;
      }
      const row = expected.findIndex((r, j) => JSON.stringify(r) !== JSON.stringify(before.rows[j]?.cells));
      for (const column of [k, v]) {
        if (!PLAIN.test(table.structure[row][column])) problems.push(`${c.description}: the cell reads as ${table.structure[row][column]}, not plain text\n${c.text}`);
      }
      const ours = readTables(c.text!)[0];
      if (JSON.stringify(ours.rows.map((r) => r.cells)) !== JSON.stringify(table.body)) problems.push(`${c.description}: the project's reader disagrees with docutils`);
      const outside = changedOutsideRow(c, before, ours);
      if (outside) problems.push(`${c.description}: ${outside}`);
    });
    expect(problems.slice(0, 5)).toEqual([]);
    expect(problems.length).toBe(0);
  }, 120_000);

  test('CR-only and CRLF documents keep their line endings', () => {
    for (const c of endings) {
      const crOnly = c.source.includes('\r') && !c.source.includes('\n');
      expect(crOnly ? c.text!.includes('\n') : c.text!.replace(/\r\n/g, '').includes('\r')).toBe(false);
    }
  });

  test("the key *PyTorch* is its own row: docutils reads it as written, and PyTorch's row is left alone", async () => {
    const once = editTable(SIMPLE, { key: '*PyTorch*', value: '/lustre/share/img/emphasis.sif' });
    const twice = editTable(once.text, { key: '*PyTorch*', value: '/lustre/share/img/emphasis-2.sif' });
    expect([once.operation, twice.operation]).toEqual(['appended', 'replaced']);
    const [result] = await docutils([twice.text]);
    expect(result.messages).toEqual([]);
    const keys = result.tables[0].body.map((r) => r[0]);
    expect(keys.filter((k) => k === 'PyTorch')).toHaveLength(1);
    expect(result.tables[0].body.find((r) => r[0] === '*PyTorch*')).toEqual(['*PyTorch*', '/lustre/share/img/emphasis-2.sif']);
    expect(result.tables[0].body.find((r) => r[0] === 'PyTorch')).toEqual(['PyTorch', '/lustre/share/img/pytorch-19.10-py3.simg']);
  });

  test('a cell written with markup is matched by what it reads as, and its value by what docutils shows', async () => {
    const source = SIMPLE.replace('VASP     /lustre/share/img/vasp-5.4.4.simg', '*VASP*   ``/lustre/share/img/vasp-5.4.4.simg``');
    const [before] = await docutils([source]);
    expect(before.tables[0].body[4]).toEqual(['VASP', '/lustre/share/img/vasp-5.4.4.simg']);
    expect(editTable(source, { key: 'VASP', value: '/lustre/share/img/vasp-5.4.4.simg' }).operation).toBe('unchanged');
    const replaced = editTable(source, { key: 'vasp', value: '/lustre/share/img/vasp_6_.sif' });
    expect(replaced.operation).toBe('replaced');
    const [after] = await docutils([replaced.text]);
    expect(after.tables[0].body[4]).toEqual(['VASP', '/lustre/share/img/vasp_6_.sif']);
  });
});

// ---------------------------------------------------------------- Markdown (docutils does not read it)

/**
 * A pipe-table reader of the test's own, the way GitHub reads a row: split at pipes that no backslash escapes,
 * trim, unescape `\|`, then backslash escapes of ASCII punctuation. `plain` when no inline markup is left over.
 */
function readMarkdownRows(text: string): { cells: string[]; plain: boolean[] }[] {
  const lines = text.split(/\r\n|\n|\r/);
  const start = lines.findIndex((l, i) => l.includes('|') && /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1] ?? ''));
  const rows: { cells: string[]; plain: boolean[] }[] = [];
  for (let i = start + 2; i < lines.length && lines[i].trim() !== '' && lines[i].includes('|'); i++) {
    let line = lines[i].trim();
    if (line.startsWith('|')) line = line.slice(1);
    if (line.endsWith('|') && !line.endsWith('\\|')) line = line.slice(0, -1);
    const raw = line.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
    rows.push({
      cells: raw.map((c) => c.replace(/\\([!-/:-@[-`{-~])/g, '$1')),
      plain: raw.map((c) => !/[*`[<~$]|(^|[^\p{L}\p{N}])_|_($|[^\p{L}\p{N}])|&\w+;/u.test(c.replace(/\\[!-/:-@[-`{-~]/g, ''))),
    });
  }
  return rows;
}

describe('hostile keys and values in Markdown tables', () => {
  const values = hostileValues();
  const cases = casesFor('markdown', values);

  test('read back exactly as written, as plain text; nothing outside the row changes; nothing is refused', () => {
    expect(cases.filter((c) => c.error).map((c) => `${c.description}: ${c.error}`)).toEqual([]);
    const beforeRows = readMarkdownRows(MARKDOWN).map((r) => r.cells);
    const problems: string[] = [];
    for (const c of cases) {
      const rows = readMarkdownRows(c.text!);
      const expected = beforeRows.map((r) => [...r]);
      const hit = expected.findIndex((r) => r[0].toLowerCase() === c.spec.key.trim().toLowerCase());
      if (hit >= 0) expected[hit][1] = c.spec.value.trim();
      else expected.push([c.spec.key.trim(), c.spec.value.trim()]);
      if (JSON.stringify(rows.map((r) => r.cells)) !== JSON.stringify(expected)) problems.push(`${c.description}: reads ${JSON.stringify(rows.map((r) => r.cells))}\n${c.text}`);
      const row = rows[hit >= 0 ? hit : rows.length - 1];
      if (row && !row.plain.every(Boolean)) problems.push(`${c.description}: markup left in ${JSON.stringify(row.cells)}\n${c.text}`);
      const outside = changedOutsideRow(c, readTables(c.source, { syntax: 'markdown' })[0], readTables(c.text!, { syntax: 'markdown' })[0]);
      if (outside) problems.push(`${c.description}: ${outside}`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });
});
