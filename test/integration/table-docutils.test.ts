// The table editor against the real docutils (Debian's python3-docutils): the project's reader must see
// what docutils sees, and every edit must come out as a table docutils reads without a warning.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { displayWidth, editTable, readTables, type Table, type TableEditResult } from '../../src/docs/table.js';

const PYTHON = '/usr/bin/python3';
const helper = fileURLToPath(new URL('../helpers/docutils_tables.py', import.meta.url));
const fixture = readFileSync(fileURLToPath(new URL('../fixtures/docs/preset-images.rst', import.meta.url)), 'utf8');

interface DocutilsTable {
  head: string[][];
  body: string[][];
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

/** All documents in one Python process: it is the start-up that costs. */
function docutils(sources: string[]): DocutilsResult[] {
  const out = execFileSync(PYTHON, [helper], { input: JSON.stringify(sources), encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  return (JSON.parse(out) as { results: DocutilsResult[] }).results;
}

/** The project's view in docutils' terms: head rows folded per column as Table.header does. */
function asDocutils(tables: Table[]): { header: string[]; body: string[][] }[] {
  return tables.map((t) => ({ header: t.header, body: t.rows.map((r) => r.cells) }));
}
function foldHead(tables: DocutilsTable[]): { header: string[]; body: string[][] }[] {
  return tables.map((t) => {
    const width = (t.head[0] ?? t.body[0] ?? []).length;
    const header = Array.from({ length: width }, (_, c) => t.head.map((r) => r[c]).filter((x) => x !== '').join('\n'));
    return { header: t.head.length ? header : [], body: t.body };
  });
}

describe("the centre's table", () => {
  beforeAll(requireDocutils);

  test('docutils reads the replaced and appended rows exactly, with no warnings', () => {
    const longer = '/lustre/share/img/pytorch-24.05-py3-cuda12.4-cudnn9-nccl2.21.simg';
    const replaced = editTable(fixture, { key: 'PyTorch', value: longer });
    const appended = editTable(replaced.text, { key: 'TensorFlow', value: '/lustre/share/img/tensorflow-2.16-gpu.simg' });
    expect([replaced.operation, appended.operation]).toEqual(['replaced', 'appended']);
    const [before, after] = docutils([fixture, appended.text]);
    expect(before.messages).toEqual([]);
    expect(after.messages).toEqual([]);
    expect(after.tables).toEqual([
      {
        head: [['软件', '位置']],
        body: [
          ['PyTorch', longer],
          ['Gromacs', '/lustre/share/img/gromacs-2018.2.simg'],
          ['OpenFOAM', '/lustre/share/img/openfoam-7.simg'],
          ['LAMMPS', '/lustre/share/img/lammps-2019.8.simg'],
          ['VASP', '/lustre/share/img/vasp-5.4.4.simg'],
          ['TensorFlow', '/lustre/share/img/tensorflow-2.16-gpu.simg'],
        ],
      },
    ]);
  });

  test("docutils' own spanning example: widening and appending go around row and column spans", () => {
    const source = [
      '+------------------------+------------+----------+----------+',
      '| 软件                   | 位置       | Header 3 | Header 4 |',
      '| (header rows optional) |            |          |          |',
      '+========================+============+==========+==========+',
      '| body row 1, column 1   | column 2   | column 3 | column 4 |',
      '+------------------------+------------+----------+----------+',
      '| body row 2             | Cells may span columns.          |',
      '+------------------------+------------+---------------------+',
      '| body row 3             | Cells may  | Table cells         |',
      '+------------------------+ span rows. | contain             |',
      '| body row 4             |            | text.               |',
      '+------------------------+------------+---------------------+',
      '',
    ].join('\n');
    const replaced = editTable(source, { key: 'body row 1, column 1', value: '/lustre/share/img/a-very-long-path-for-column-two.simg' });
    const appended = editTable(replaced.text, { key: 'body row 5 with a long key that widens', value: '/b' });
    const results = docutils([source, appended.text]);
    expect(results.map((r) => r.messages)).toEqual([[], []]);
    expect(foldHead(results[0].tables)).toEqual(asDocutils(readTables(source)));
    expect(foldHead(results[1].tables)).toEqual(asDocutils(readTables(appended.text)));
    expect(results[1].tables[0].body).toEqual([
      ['body row 1, column 1', '/lustre/share/img/a-very-long-path-for-column-two.simg', 'column 3', 'column 4'],
      ['body row 2', 'Cells may span columns.', '', ''],
      ['body row 3', 'Cells may\nspan rows.', 'Table cells\ncontain\ntext.', ''],
      ['body row 4', '', '', ''],
      ['body row 5 with a long key that widens', '/b', '', ''],
    ]);
    expect(() => editTable(source, { key: 'body row 3', value: '/x' })).toThrow(/cell spanning several columns or rows; edit it by hand/);
  });

  test("the helper reports docutils' warnings, so 'no warnings' above means something", () => {
    const [malformed, narrow] = docutils([
      '===== =====\n软件  位置\n===== =====\ntoolongkey /x\n===== =====\n',
      // Aligned as if wide characters took one column: for docutils 软件 runs into the margin.
      '=== ===\n软件 位置\n=== ===\nA   /x\n=== ===\n',
    ]);
    expect(malformed.messages.map((m) => m.text)).toEqual([expect.stringContaining('Text in column margin in table line 4.')]);
    expect(narrow.messages.map((m) => m.level)).toEqual([3]);
    expect(readTables('=== ===\n软件 位置\n=== ===\nA   /x\n=== ===\n')).toEqual([]);
  });

  test("displayWidth agrees with docutils' column_width for every character Python's Unicode 14 assigns", () => {
    // Unicode 16 made the Yijing, Tai Xuan Jing and counting-rod symbols wide; Python 3.11 (Unicode 14) and
    // so docutils here still count them as one column. get-east-asian-width follows the newer data.
    const reclassified = [[0x2630, 0x2637], [0x268a, 0x268f], [0x4dc0, 0x4dff], [0x1d300, 0x1d376]];
    const script = [
      'import unicodedata',
      'from docutils.utils import column_width',
      'print(" ".join("%x:%d" % (cp, column_width(chr(cp))) for cp in range(0x20, 0x3134B)',
      '               if unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co", "Cc")))',
    ].join('\n');
    const disagreements: string[] = [];
    let checked = 0;
    for (const entry of execFileSync(PYTHON, ['-c', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim().split(' ')) {
      const [hex, width] = entry.split(':');
      const cp = parseInt(hex, 16);
      checked++;
      if (reclassified.some(([a, b]) => cp >= a && cp <= b)) continue;
      const ours = displayWidth(String.fromCodePoint(cp));
      if (ours !== Number(width)) disagreements.push(`U+${hex.toUpperCase()}: ours ${ours}, docutils ${width}`);
    }
    expect(checked).toBeGreaterThan(140000);
    expect(disagreements.slice(0, 20)).toEqual([]);
  });
});

// ---------------------------------------------------------------- generated tables

/** Small seeded PRNG (mulberry32): the same tables every run. */
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

class Gen {
  constructor(readonly random: () => number) {}
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
}

const NAMES = ['PyTorch', 'Gromacs', 'LAMMPS', 'VASP', 'OpenFOAM', 'TensorFlow', 'CP2K', 'NAMD', 'Quantum-ESPRESSO', 'WRF', 'abinit', 'nwchem', 'siesta', 'octopus', 'relion', 'alphafold', 'MXNet', 'Horovod', 'Caffe', 'cuda-toolkit'];
const CJK = ['分子动力学', '深度学习', '量子化学', '镜像', '计算流体力学', '气象模拟', '蛋白质结构预测', '软件包', '第一性原理'];
const FULLWIDTH = ['ＰｙＴｏｒｃｈ', 'ＧＰＵ版', '１２３', 'ＡＢＣ', 'ｃｕｄａ'];
const OTHER_WIDE = ['テスト', '한국어', 'ﾃｽﾄ', 'ソフト'];
const COMBINING = ['cafe\u0301', 'nai\u0308ve', 'Tie\u0302\u0301ng', 'Zu\u0308rich', 'man\u0303ana', 'Ame\u0301lie'];

function word(g: Gen, combining: boolean): string {
  const kind = g.int(combining ? 5 : 4);
  if (kind === 0) return g.pick(NAMES);
  if (kind === 1) return g.pick(CJK);
  if (kind === 2) return g.pick(FULLWIDTH);
  if (kind === 3) return g.pick(OTHER_WIDE);
  return g.pick(COMBINING);
}

function path(g: Gen, long = false): string {
  const name = g.pick(NAMES).toLowerCase();
  const version = `${1 + g.int(24)}.${g.int(12)}`;
  const suffix = long ? `-py3-cuda12.${g.int(5)}-cudnn9-${'x'.repeat(10 + g.int(40))}` : '';
  return `/lustre/share/img/${name}-${version}${suffix}.simg`;
}

function text(g: Gen, combining: boolean, maxWords = 3): string {
  const words = Array.from({ length: 1 + g.int(maxWords) }, () => word(g, combining));
  return g.chance(0.3) ? words.join('') : words.join(' ');
}

function value(g: Gen, combining: boolean): string {
  const r = g.int(10);
  if (r < 5) return path(g, g.chance(0.2));
  if (r < 8) return text(g, combining);
  return `${path(g)} ${text(g, combining, 2)}`;
}

interface GenTable {
  format: 'rst-simple' | 'rst-grid';
  header: string[] | null;
  /** rows -> cells -> lines */
  rows: string[][][];
  /** A note row spanning every column: first in simple tables (a span underline right above the bottom border would add an empty row), last in grid tables. */
  note?: string;
  keyColumn: number;
  valueColumn: number;
}

const pad = (t: string, w: number): string => t + ' '.repeat(Math.max(0, w - displayWidth(t)));

function renderSimple(g: Gen, t: GenTable): string[] {
  const n = (t.header ?? t.rows[0]).length;
  const all = [...(t.header ? [t.header.map((h) => [h])] : []), ...t.rows];
  const widths = Array.from({ length: n }, (_, c) => Math.max(1, ...all.flatMap((r) => r[c].map(displayWidth))) + g.int(3));
  if (g.chance(0.2)) widths[n - 1] = Math.max(1, widths[n - 1] - 1 - g.int(10)); // the last column may overflow its border
  const gaps = Array.from({ length: n - 1 }, () => ' '.repeat(1 + g.int(3)));
  const border = widths.map((w, c) => '='.repeat(w) + (gaps[c] ?? '')).join('');
  const line = (cells: string[]): string => cells.map((cell, c) => (c === n - 1 ? cell : pad(cell, widths[c]) + gaps[c])).join('').trimEnd();
  const out = [border];
  if (t.header) out.push(line(t.header), border);
  if (t.note) out.push(t.note, '-'.repeat(border.length));
  for (const row of t.rows) {
    const height = Math.max(...row.map((c) => c.length));
    for (let i = 0; i < height; i++) out.push(line(row.map((c) => c[i] ?? '')));
  }
  out.push(border);
  return out;
}

function renderGrid(g: Gen, t: GenTable): string[] {
  const n = (t.header ?? t.rows[0]).length;
  const all = [...(t.header ? [t.header.map((h) => [h])] : []), ...t.rows];
  const widths = Array.from({ length: n }, (_, c) => Math.max(...all.flatMap((r) => r[c].map(displayWidth))) + 2 + g.int(3));
  const sep = (ch: string): string => '+' + widths.map((w) => ch.repeat(w)).join('+') + '+';
  const lines = (cells: string[][]): string[] => {
    const height = Math.max(...cells.map((c) => c.length));
    return Array.from({ length: height }, (_, i) => '|' + cells.map((c, k) => pad(` ${c[i] ?? ''}`, widths[k])).join('|') + '|');
  };
  const out = [sep('-')];
  if (t.header) out.push(...lines(t.header.map((h) => [h])), sep('='));
  for (const row of t.rows) out.push(...lines(row), sep('-'));
  if (t.note) {
    const inner = widths.reduce((a, b) => a + b, 0) + widths.length - 1;
    if (displayWidth(t.note) + 2 <= inner) out.push(`|${pad(` ${t.note}`, inner)}|`, sep('-'));
    else t.note = undefined;
  }
  return out;
}

function genTable(g: Gen, target: boolean): GenTable {
  const format = g.chance(0.5) ? 'rst-simple' : 'rst-grid';
  const simple = format === 'rst-simple';
  const extra = g.int(3);
  const n = 2 + extra;
  // Simple tables need the key first (an appended row's first column must not be empty); grid tables need not.
  const keyColumn = simple ? 0 : g.int(n);
  let valueColumn = g.int(n);
  while (valueColumn === keyColumn) valueColumn = g.int(n);
  const header = Array.from({ length: n }, () => g.pick(['版本', '说明', 'Notes', '模块', 'Version']));
  header.forEach((_, i) => (header[i] = `${header[i]}${i}`));
  if (target) {
    header[keyColumn] = g.pick(['软件', 'Software', 'software']);
    header[valueColumn] = g.pick(['位置', 'Location', ' 位置']).trim();
  }
  const keys = new Set<string>();
  const rows: string[][][] = [];
  const count = 1 + g.int(8);
  for (let r = 0; r < count; r++) {
    // docutils 0.19 mis-slices grid cells and multi-line simple rows that contain combining characters.
    const multi = g.chance(0.25);
    const combining = simple && !multi;
    let key = text(g, combining, 2);
    while (keys.has(key.toLowerCase())) key += g.pick(NAMES);
    keys.add(key.toLowerCase());
    const row = Array.from({ length: n }, (_, c) => {
      if (c === keyColumn) return [key];
      const v = value(g, combining);
      if (!multi || (simple && c === 0)) return [v];
      return g.chance(0.5) ? [v, text(g, false, 2)] : [v];
    });
    rows.push(row);
  }
  const note = g.chance(0.15) ? g.pick(['注：以下镜像需要 GPU 节点', 'Images below need a GPU node', '其余镜像见 /lustre/share/img']) : undefined;
  return { format, header: target || g.chance(0.8) ? header : null, rows, keyColumn, valueColumn, note };
}

interface Case {
  source: string;
  edited?: TableEditResult;
  error?: string;
  intended?: string[][];
  description: string;
}

function genDocument(g: Gen, index: number): Case {
  const parts: string[] = [`Document ${index}`, '='.repeat(12), '', '本页列出预置镜像。This page lists the images.', ''];
  const tables = [genTable(g, true)];
  if (g.chance(0.3)) tables.unshift(genTable(g, false));
  if (g.chance(0.3)) tables.push(genTable(g, false));
  let target: GenTable = tables[0];
  for (const t of tables) {
    const lines = t.format === 'rst-simple' ? renderSimple(g, t) : renderGrid(g, t);
    if (t.header?.some((h) => ['软件', 'software'].includes(h.toLowerCase()))) target = t;
    if (g.chance(0.2)) {
      parts.push('.. table:: 预置镜像', '', ...lines.map((l) => `   ${l}`), '');
    } else {
      parts.push(...lines, '');
    }
    if (g.chance(0.15)) parts.push('An example of the markup::', '', ...lines.map((l) => `    ${l}`), '');
    parts.push(g.pick(['更多信息见下文。', 'See also the next section.', '如需其他镜像，请联系管理员。']), '');
  }
  const source = parts.join(g.chance(0.1) ? '\r\n' : '\n');
  const simple = target.format === 'rst-simple';
  const op = g.int(10);
  const rowCount = target.rows.length;
  let key: string;
  let newValue: string;
  if (op < 5) {
    const row = target.rows[g.int(rowCount)];
    key = row[target.keyColumn][0];
    if (g.chance(0.3)) key = key.toLowerCase();
    newValue = g.chance(0.4) ? path(g, true) : value(g, simple);
  } else if (op < 6) {
    const row = target.rows[g.int(rowCount)];
    key = row[target.keyColumn][0];
    newValue = row[target.valueColumn].join('\n');
    if (newValue.includes('\n')) newValue = path(g);
  } else {
    key = `${text(g, simple, 2)}${g.chance(0.3) ? '-' + 'x'.repeat(20 + g.int(20)) : ''}`;
    while (target.rows.some((r) => r[target.keyColumn][0].toLowerCase() === key.toLowerCase())) key += 'z';
    newValue = g.chance(0.4) ? path(g, true) : value(g, simple);
  }
  const description = `document ${index} (${target.format}, key ${JSON.stringify(key)}, value ${JSON.stringify(newValue)})`;
  try {
    const edited = editTable(source, { key, value: newValue });
    const intended = target.rows.map((r) => r.map((c) => c.join('\n')));
    const noteRow = intended[0].map((_, c) => (c === 0 ? target.note! : ''));
    if (target.note) {
      if (target.format === 'rst-simple') intended.unshift(noteRow);
      else intended.push(noteRow);
    }
    const hit = intended.findIndex((r) => r[target.keyColumn].toLowerCase() === key.toLowerCase());
    if (hit >= 0) intended[hit][target.valueColumn] = newValue;
    else intended.push(intended[0].map((_, c) => (c === target.keyColumn ? key : c === target.valueColumn ? newValue : '')));
    return { source, edited, intended, description };
  } catch (error) {
    return { source, error: String(error), description };
  }
}

/** Whether the edit touched anything but its table, or more than its row when the borders stayed. */
function changedOutside(source: string, result: TableEditResult): string | null {
  const before = source.split('\n');
  const after = result.text.split('\n');
  const original = readTables(source).find((t) => t.startLine === result.table.startLine);
  if (!original) return 'the edited table is not where it was';
  const head = original.startLine - 1;
  const tail = before.length - original.endLine;
  if (before.slice(0, head).join('\n') !== after.slice(0, head).join('\n')) return 'lines before the table changed';
  if (before.slice(before.length - tail).join('\n') !== after.slice(after.length - tail).join('\n')) return 'lines after the table changed';
  if (result.operation === 'replaced' && before.length === after.length && before[head] === after[head]) {
    const row = result.table.rows.findIndex((r, i) => JSON.stringify(r.cells) !== JSON.stringify(original.rows[i]?.cells));
    if (row < 0) return 'no row changed';
    const first = result.table.rows[row].line - 1;
    const next = result.table.rows[row + 1]?.line ?? result.table.endLine;
    for (let i = head; i < original.endLine; i++) {
      if (before[i] !== after[i] && (i < first || i >= next - 1)) return `line ${i + 1} changed although no column widened`;
    }
  }
  return null;
}

describe('generated documents', () => {
  beforeAll(requireDocutils);
  const g = new Gen(prng(20261128));
  const cases = Array.from({ length: 600 }, (_, i) => genDocument(g, i));

  test('cover simple and grid tables, CJK, fullwidth and combining marks, replacing, appending and widening', () => {
    const all = cases.map((c) => c.source).join('\n');
    expect(cases.reduce((n, c) => n + readTables(c.source).length, 0)).toBeGreaterThan(700);
    expect(cases.filter((c) => c.edited?.format === 'rst-simple').length).toBeGreaterThan(200);
    expect(cases.filter((c) => c.edited?.format === 'rst-grid').length).toBeGreaterThan(200);
    for (const op of ['replaced', 'appended', 'unchanged'] as const) expect(cases.filter((c) => c.edited?.operation === op).length).toBeGreaterThan(30);
    for (const sample of ['软件', 'ＰｙＴｏｒｃｈ', '\u0301', '\r\n', '.. table::', '注：']) expect(all).toContain(sample);
    const widened = cases.filter((c) => c.edited && c.edited.text.split(/\r?\n/)[c.edited.table.startLine - 1] !== c.source.split(/\r?\n/)[c.edited.table.startLine - 1]);
    expect(widened.length).toBeGreaterThan(100);
  });

  test('every edit succeeds, unless it would put a combining mark where docutils misreads it', () => {
    const refused = cases.filter((c) => c.error?.includes('which docutils misreads'));
    expect(cases.filter((c) => c.error && !refused.includes(c)).map((c) => `${c.description}: ${c.error}`).slice(0, 5)).toEqual([]);
    expect(refused.length).toBeLessThan(cases.length / 10);
  });

  test("the project's reader agrees with docutils on every input and every edited output, and docutils has no warnings", () => {
    const edited = cases.filter((c) => c.edited);
    const results = docutils([...cases.map((c) => c.source), ...edited.map((c) => c.edited!.text)]);
    expect(results.length).toBe(cases.length + edited.length);
    const problems: string[] = [];
    cases.forEach((c, i) => {
      const r = results[i];
      if (r.messages.length) problems.push(`input of ${c.description}: docutils says ${JSON.stringify(r.messages)}`);
      const ours = asDocutils(readTables(c.source));
      if (JSON.stringify(ours) !== JSON.stringify(foldHead(r.tables))) {
        problems.push(`input of ${c.description}: ours ${JSON.stringify(ours)} docutils ${JSON.stringify(foldHead(r.tables))}`);
      }
    });
    edited.forEach((c, i) => {
      const r = results[cases.length + i];
      const text = c.edited!.text;
      if (r.messages.length) problems.push(`output of ${c.description}: docutils says ${JSON.stringify(r.messages)}\n${text}`);
      const theirs = foldHead(r.tables);
      const ours = asDocutils(readTables(text));
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) problems.push(`output of ${c.description}: ours ${JSON.stringify(ours)} docutils ${JSON.stringify(theirs)}\n${text}`);
      const outside = changedOutside(c.source, c.edited!);
      if (outside) problems.push(`output of ${c.description}: ${outside}`);
      if (!theirs.some((t) => JSON.stringify(t.body) === JSON.stringify(c.intended))) {
        problems.push(`output of ${c.description}: docutils does not read the intended rows ${JSON.stringify(c.intended)}\n${text}`);
      }
    });
    expect(problems.slice(0, 3)).toEqual([]);
    expect(problems.length).toBe(0);
  });
});

// ---------------------------------------------------------------- Markdown (docutils does not read it)

function genMarkdown(g: Gen, index: number): { source: string; key: string; value: string; intended: string[][]; aligned: boolean } {
  const n = 2 + g.int(2);
  const header = ['软件', '位置', '说明'].slice(0, n);
  if (g.chance(0.3)) header.reverse();
  const k = header.indexOf('软件');
  const v = header.indexOf('位置');
  const rows: string[][] = [];
  const keys = new Set<string>();
  for (let r = 0, count = 1 + g.int(6); r < count; r++) {
    let key = text(g, true, 2);
    while (keys.has(key.toLowerCase())) key += 'x';
    keys.add(key.toLowerCase());
    rows.push(header.map((_, c) => (c === k ? key : c === v ? value(g, true) : text(g, true))));
  }
  const aligned = g.chance(0.6);
  const align = header.map(() => g.pick(['---', ':--', '--:', ':-:']));
  let table: string[];
  if (aligned) {
    const widths = header.map((_, c) => Math.max(3, ...[header, ...rows].map((r) => displayWidth(r[c]))) + g.int(3));
    const line = (cells: string[]): string => `| ${cells.map((cell, c) => pad(cell, widths[c])).join(' | ')} |`;
    const dashes = (c: number): string => align[c][0] + '-'.repeat(widths[c] - 2) + align[c][2];
    table = [line(header), `| ${header.map((_, c) => dashes(c)).join(' | ')} |`, ...rows.map(line)];
  } else {
    table = [header.join(' | '), align.join(' | '), ...rows.map((r) => r.join(' | '))];
  }
  const source = [`# Document ${index}`, '', '下表列出镜像。', '', ...table, '', '更多说明。', ''].join('\n');
  const intended = rows.map((r) => [...r]);
  let key: string;
  let newValue: string;
  if (g.chance(0.6)) {
    const r = g.int(rows.length);
    key = g.chance(0.3) ? rows[r][k].toUpperCase() : rows[r][k];
    newValue = g.chance(0.15) ? rows[r][v] : g.chance(0.4) ? path(g, true) : value(g, true);
    intended[r][v] = newValue;
  } else {
    key = `${text(g, true, 2)}-new`;
    newValue = value(g, true);
    intended.push(header.map((_, c) => (c === k ? key : c === v ? newValue : '')));
  }
  return { source, key, value: newValue, intended, aligned };
}

describe('generated Markdown tables', () => {
  const g = new Gen(prng(4242));
  const cases = Array.from({ length: 300 }, (_, i) => genMarkdown(g, i));

  test('read back with exactly the intended rows; nothing outside the table changes; aligned tables stay aligned', () => {
    const problems: string[] = [];
    const seen = { replaced: 0, appended: 0, unchanged: 0, widened: 0 };
    for (const [i, c] of cases.entries()) {
      let result: TableEditResult;
      try {
        result = editTable(c.source, { key: c.key, value: c.value, syntax: 'markdown' });
      } catch (error) {
        problems.push(`document ${i} (key ${JSON.stringify(c.key)}, value ${JSON.stringify(c.value)}): ${String(error)}\n${c.source}`);
        continue;
      }
      seen[result.operation]++;
      const [table] = readTables(result.text, { syntax: 'markdown' });
      if (JSON.stringify(table.rows.map((r) => r.cells)) !== JSON.stringify(c.intended)) problems.push(`document ${i}: rows ${JSON.stringify(table.rows)}\n${result.text}`);
      const before = c.source.split('\n');
      const after = result.text.split('\n');
      if (before.slice(0, 4).join('\n') !== after.slice(0, 4).join('\n') || before.slice(-3).join('\n') !== after.slice(-3).join('\n')) {
        problems.push(`document ${i}: lines outside the table changed`);
      }
      const tableLines = after.slice(table.startLine - 1, table.endLine);
      if (c.aligned) {
        const widths = new Set(tableLines.map(displayWidth));
        if (widths.size !== 1) problems.push(`document ${i}: no longer aligned\n${result.text}`);
        if (tableLines[0] !== before[4]) seen.widened++;
      } else {
        const changed = tableLines.filter((l, j) => l !== before[4 + j]).length;
        if (changed > 1) problems.push(`document ${i}: ${changed} lines of a compact table changed\n${result.text}`);
      }
    }
    expect(problems.slice(0, 3)).toEqual([]);
    expect(seen.replaced).toBeGreaterThan(100);
    expect(seen.appended).toBeGreaterThan(60);
    expect(seen.unchanged).toBeGreaterThan(5);
    expect(seen.widened).toBeGreaterThan(20);
  });
});
