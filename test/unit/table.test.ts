import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { displayWidth, editTable, editTableBytes, listedValues, readTables, TableError, type TableEditSpec } from '../../src/docs/table.js';
import { unifiedDiff } from '../../src/docs/line-diff.js';

const fixtures = fileURLToPath(new URL('../fixtures/docs/', import.meta.url));
const read = (name: string): string => readFileSync(fixtures + name, 'utf8');
const rst = read('preset-images.rst');
const grid = read('preset-images-grid.rst');
const markdown = read('preset-images.md');

const LONG = '/lustre/share/img/pytorch-24.05-py3-cuda12.4-cudnn9-nccl2.21.simg';
const lines = (text: string): string[] => text.split('\n');
const edit = (text: string, spec: TableEditSpec) => editTable(text, spec);
const errorOf = (fn: () => unknown): TableError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof TableError) return error;
    throw error;
  }
  throw new Error('expected a TableError');
};

describe("the centre's simple table", () => {
  test('reads the header and the five rows with their lines', () => {
    const [table] = readTables(rst);
    expect(table).toMatchObject({ format: 'rst-simple', startLine: 10, endLine: 18, header: ['软件', '位置'] });
    expect(table.rows.map((r) => [r.line, ...r.cells])).toEqual([
      [13, 'PyTorch', '/lustre/share/img/pytorch-19.10-py3.simg'],
      [14, 'Gromacs', '/lustre/share/img/gromacs-2018.2.simg'],
      [15, 'OpenFOAM', '/lustre/share/img/openfoam-7.simg'],
      [16, 'LAMMPS', '/lustre/share/img/lammps-2019.8.simg'],
      [17, 'VASP', '/lustre/share/img/vasp-5.4.4.simg'],
    ]);
  });

  test('a longer PyTorch path widens the 位置 column: only the borders and that row change, then an appended row', () => {
    const replaced = edit(rst, { key: 'PyTorch', value: LONG });
    expect(replaced).toMatchObject({ operation: 'replaced', oldValue: '/lustre/share/img/pytorch-19.10-py3.simg', format: 'rst-simple' });
    const appended = edit(replaced.text, { key: 'CP2K', value: '/lustre/share/img/cp2k-9.1.simg' });
    expect(appended.operation).toBe('appended');
    const before = lines(rst);
    const after = lines(appended.text);
    const border = '======== ' + '='.repeat(LONG.length);
    expect(after.slice(9, 19)).toEqual([
      border,
      '软件     位置',
      border,
      `PyTorch  ${LONG}`,
      'Gromacs  /lustre/share/img/gromacs-2018.2.simg',
      'OpenFOAM /lustre/share/img/openfoam-7.simg',
      'LAMMPS   /lustre/share/img/lammps-2019.8.simg',
      'VASP     /lustre/share/img/vasp-5.4.4.simg',
      'CP2K     /lustre/share/img/cp2k-9.1.simg',
      border,
    ]);
    // Every other line, the table's other rows included, is byte-identical.
    const changed = new Set([9, 11, 12, 17]);
    const expected = before.slice(0, 17).filter((_, i) => !changed.has(i));
    const actual = after.slice(0, 17).filter((_, i) => !changed.has(i));
    expect(actual).toEqual(expected);
    expect(after.slice(19)).toEqual(before.slice(18));
    expect(appended.table.rows.map((r) => r.cells)).toContainEqual(['CP2K', '/lustre/share/img/cp2k-9.1.simg']);
  });

  test('a key wider than the 软件 column re-pads that table only', () => {
    const result = edit(rst, { key: 'TensorFlow', value: '/lustre/share/img/tensorflow-2.16.simg' });
    const after = lines(result.text);
    expect(after.slice(9, 19)).toEqual([
      '========== ========================================',
      '软件       位置',
      '========== ========================================',
      'PyTorch    /lustre/share/img/pytorch-19.10-py3.simg',
      'Gromacs    /lustre/share/img/gromacs-2018.2.simg',
      'OpenFOAM   /lustre/share/img/openfoam-7.simg',
      'LAMMPS     /lustre/share/img/lammps-2019.8.simg',
      'VASP       /lustre/share/img/vasp-5.4.4.simg',
      'TensorFlow /lustre/share/img/tensorflow-2.16.simg',
      '========== ========================================',
    ]);
    expect(after.slice(0, 9)).toEqual(lines(rst).slice(0, 9));
    expect(after.slice(19)).toEqual(lines(rst).slice(18));
  });

  test('the key matches case-insensitively and trimmed; the row keeps its own spelling', () => {
    const result = edit(rst, { key: '  pytorch ', value: '/lustre/share/img/pytorch-20.01.simg' });
    expect(result.operation).toBe('replaced');
    expect(lines(result.text)[12]).toBe('PyTorch  /lustre/share/img/pytorch-20.01.simg');
  });

  test('the same value again is unchanged and returns the text as it was', () => {
    const result = edit(rst, { key: 'Gromacs', value: '/lustre/share/img/gromacs-2018.2.simg' });
    expect(result).toMatchObject({ operation: 'unchanged', oldValue: '/lustre/share/img/gromacs-2018.2.simg' });
    expect(result.text).toBe(rst);
  });

  test('a shorter value leaves the borders alone', () => {
    const result = edit(rst, { key: 'VASP', value: '/lustre/share/img/vasp.simg' });
    const diff = lines(result.text).map((l, i) => (l === lines(rst)[i] ? null : i)).filter((i) => i !== null);
    expect(diff).toEqual([16]);
  });

  test('CRLF line endings and a UTF-8 byte order mark survive', () => {
    const crlf = '\uFEFF' + rst.replace(/\n/g, '\r\n');
    const result = edit(crlf, { key: 'PyTorch', value: LONG });
    const appended = edit(result.text, { key: 'CP2K', value: '/x/cp2k.simg' });
    expect(appended.text.startsWith('\uFEFF')).toBe(true);
    expect(appended.text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(appended.text.split('\r\n')).toHaveLength(rst.split('\n').length + 1);
    expect(readTables(appended.text)[0].rows.map((r) => r.cells[0])).toEqual(['PyTorch', 'Gromacs', 'OpenFOAM', 'LAMMPS', 'VASP', 'CP2K']);
  });

  test('a file without a final newline keeps it that way, even when the table is last', () => {
    const text = '======== ====\n软件     位置\n======== ====\nA        /a\n======== ====';
    const result = edit(text, { key: 'B', value: '/b' });
    expect(result.text).toBe('======== ====\n软件     位置\n======== ====\nA        /a\nB        /b\n======== ====');
  });

  test('listedValues gives every path the table lists', () => {
    expect(listedValues(rst)).toEqual([
      '/lustre/share/img/pytorch-19.10-py3.simg',
      '/lustre/share/img/gromacs-2018.2.simg',
      '/lustre/share/img/openfoam-7.simg',
      '/lustre/share/img/lammps-2019.8.simg',
      '/lustre/share/img/vasp-5.4.4.simg',
    ]);
    expect(listedValues(markdown, { keyColumns: ['Name'], valueColumns: ['Path'] })).toEqual(['/lustre/share/img/lammps-2019.8.simg']);
    expect(listedValues(grid)).toEqual([
      '/lustre/share/img/pytorch-19.10-py3.simg',
      '/lustre/share/img/\ngromacs-2018.2.simg',
      '/lustre/share/img/gromacs-2018.2.simg',
      '/lustre/share/img/vasp-5.4.4.simg',
    ]);
  });
});

describe('East Asian width and combining characters', () => {
  test("displayWidth counts wide and fullwidth as two and combining marks as none (docutils' rule)", () => {
    expect(displayWidth('软件')).toBe(4);
    expect(displayWidth('ＰｙＴｏｒｃｈ')).toBe(14);
    expect(displayWidth('ﾃｽﾄ')).toBe(3); // halfwidth katakana
    expect(displayWidth('Zu\u0308rich')).toBe(6);
    expect(displayWidth('Tie\u0302\u0301ng')).toBe(5);
    expect(displayWidth('한국어')).toBe(6);
    expect(displayWidth('')).toBe(0);
  });

  test('a simple table with fullwidth and combining text lines up by display columns', () => {
    const text = ['==========  ======', 'Software    Location', '==========  ======', 'Zu\u0308rich      /z', 'ＧＰＵ版    /g', '==========  ======', ''].join('\n');
    expect(readTables(text)[0].rows.map((r) => r.cells)).toEqual([
      ['Zu\u0308rich', '/z'],
      ['ＧＰＵ版', '/g'],
    ]);
    const result = edit(text, { key: 'ＰｙＴｏｒｃｈ版', value: 'cafe\u0301 /p' });
    // The value needs 7 columns; the header may keep overflowing the last column, as docutils allows.
    expect(lines(result.text)).toEqual([
      '================  =======',
      'Software          Location',
      '================  =======',
      'Zu\u0308rich            /z',
      'ＧＰＵ版          /g',
      'ＰｙＴｏｒｃｈ版  cafe\u0301 /p',
      '================  =======',
      '',
    ]);
  });

  test('a combining mark is refused where docutils 0.19 misreads it (grid cells)', () => {
    expect(errorOf(() => edit(grid, { key: 'VASP', value: '/x/cafe\u0301.simg' })).message).toMatch(/combining character U\+0301.*grid table.*NFC/);
    expect(edit(grid, { key: 'VASP', value: '/x/caf\u00e9.simg' }).operation).toBe('replaced');
  });
});

describe('grid tables', () => {
  test('multi-line cells are read with their lines joined by a newline, as docutils does', () => {
    const [table] = readTables(grid);
    expect(table).toMatchObject({ format: 'rst-grid', startLine: 4, endLine: 14, header: ['软件', '位置', '说明'] });
    expect(table.rows.map((r) => [r.line, ...r.cells])).toEqual([
      [7, 'PyTorch', '/lustre/share/img/pytorch-19.10-py3.simg', '深度学习框架\nGPU 版本'],
      [10, 'Gromacs', '/lustre/share/img/\ngromacs-2018.2.simg', '分子动力学'],
      [13, 'VASP', '/lustre/share/img/vasp-5.4.4.simg', '需要许可证'],
    ]);
  });

  test('replacing a value that spanned two lines leaves one line; other multi-line cells survive', () => {
    const result = edit(grid, { key: 'gromacs', value: '/lustre/share/img/gromacs-2023.simg' });
    expect(lines(result.text).slice(9, 11)).toEqual([
      '| Gromacs  | /lustre/share/img/gromacs-2023.simg      | 分子动力学       |',
      '+----------+------------------------------------------+------------------+',
    ]);
    expect(result.table.rows[0].cells[2]).toBe('深度学习框架\nGPU 版本');
    expect(lines(result.text).slice(0, 9)).toEqual(lines(grid).slice(0, 9));
    expect(lines(result.text).slice(10)).toEqual(lines(grid).slice(11));
  });

  test('a longer value widens its column in every line of the table; an appended row gets its own border', () => {
    const result = edit(edit(grid, { key: 'PyTorch', value: LONG }).text, { key: 'CP2K', value: '/lustre/share/img/cp2k.simg' });
    const out = lines(result.text);
    const extra = LONG.length + 2 - 42;
    expect(out[3]).toBe(`+----------+${'-'.repeat(42 + extra)}+------------------+`);
    expect(out[5]).toBe(`+==========+${'='.repeat(42 + extra)}+==================+`);
    expect(out[6]).toBe(`| PyTorch  | ${LONG} | 深度学习框架     |`);
    expect(out[7]).toBe(`|          | ${' '.repeat(LONG.length)} | GPU 版本         |`);
    expect(out.slice(14, 16)).toEqual([`| CP2K     | /lustre/share/img/cp2k.simg${' '.repeat(LONG.length - 27)} |                  |`, out[3]]);
    expect(result.table.rows.map((r) => r.cells)).toEqual([
      ['PyTorch', LONG, '深度学习框架\nGPU 版本'],
      ['Gromacs', '/lustre/share/img/\ngromacs-2018.2.simg', '分子动力学'],
      ['VASP', '/lustre/share/img/vasp-5.4.4.simg', '需要许可证'],
      ['CP2K', '/lustre/share/img/cp2k.simg', ''],
    ]);
    expect(out.slice(0, 3)).toEqual(lines(grid).slice(0, 3));
    expect(out.slice(17)).toEqual(lines(grid).slice(15));
  });

  test('a cell spanning columns is read in its first column; widening goes around it', () => {
    const text = [
      '+------+--------+',
      '| 软件 | 位置   |',
      '+======+========+',
      '| A    | /a     |',
      '+------+--------+',
      '| note spans    |',
      '+------+--------+',
      '',
    ].join('\n');
    expect(readTables(text)[0].rows.map((r) => r.cells)).toEqual([
      ['A', '/a'],
      ['note spans', ''],
    ]);
    const result = edit(text, { key: 'A', value: '/a/much/longer/path' });
    expect(lines(result.text)).toEqual([
      '+------+---------------------+',
      '| 软件 | 位置                |',
      '+======+=====================+',
      '| A    | /a/much/longer/path |',
      '+------+---------------------+',
      '| note spans                 |',
      '+------+---------------------+',
      '',
    ]);
    expect(errorOf(() => edit(text, { key: 'note spans', value: '/x' })).message).toMatch(/spanning/);
  });
});

describe('Markdown pipe tables', () => {
  test('are read by header; a table inside a code fence is not a table', () => {
    const tables = readTables(markdown);
    expect(tables.map((t) => [t.format, t.startLine, t.header])).toEqual([
      ['markdown', 5, ['软件', '位置']],
      ['markdown', 19, ['Name', 'Path', 'Notes']],
    ]);
    expect(tables[1].rows).toEqual([{ cells: ['LAMMPS', '/lustre/share/img/lammps-2019.8.simg', 'x'], line: 21 }]);
  });

  test('an aligned table stays aligned: a fitting value changes one row, a longer one re-pads the table', () => {
    const short = edit(markdown, { key: 'VASP', value: '/lustre/share/img/vasp-6.4.simg' });
    const diff = lines(short.text).map((l, i) => (l === lines(markdown)[i] ? null : i)).filter((i) => i !== null);
    expect(diff).toEqual([8]);
    expect(lines(short.text)[8]).toBe('| VASP    | /lustre/share/img/vasp-6.4.simg          |');
    const long = edit(markdown, { key: 'PyTorch', value: LONG });
    expect(lines(long.text).slice(4, 9)).toEqual([
      `| 软件    | 位置${' '.repeat(LONG.length - 4)} |`,
      `| ------- | ${'-'.repeat(LONG.length)} |`,
      `| PyTorch | ${LONG} |`,
      `| Gromacs | /lustre/share/img/gromacs-2018.2.simg${' '.repeat(LONG.length - 37)} |`,
      `| VASP    | /lustre/share/img/vasp-5.4.4.simg${' '.repeat(LONG.length - 33)} |`,
    ]);
    expect(lines(long.text).slice(9)).toEqual(lines(markdown).slice(9));
  });

  test('a compact table gets a compact row; alignment colons and other columns are kept', () => {
    const result = edit(markdown, { key: 'NAMD', value: '/lustre/share/img/namd-3.simg', keyColumns: ['Name'], valueColumns: ['Path'] });
    expect(lines(result.text).slice(18, 22)).toEqual(['Name|Path|Notes', ':--|:-:|--:', 'LAMMPS|/lustre/share/img/lammps-2019.8.simg|x', 'NAMD | /lustre/share/img/namd-3.simg |']);
    expect(result.table.rows[1].cells).toEqual(['NAMD', '/lustre/share/img/namd-3.simg', '']);
  });

  test('an escaped pipe in another cell survives re-padding', () => {
    const text = ['| 软件 | 位置 | Notes    |', '| ---- | ---- | -------- |', '| A    | /a   | x \\| y   |', ''].join('\n');
    expect(readTables(text)[0].rows[0].cells).toEqual(['A', '/a', 'x | y']);
    const result = edit(text, { key: 'B', value: '/b/longer' });
    expect(lines(result.text)).toEqual([
      '| 软件 | 位置      | Notes    |',
      '| ---- | --------- | -------- |',
      '| A    | /a        | x \\| y   |',
      '| B    | /b/longer |          |',
      '',
    ]);
  });

  test("a '|' in a value is written escaped and reads back as written", () => {
    const result = edit(markdown, { key: 'VASP', value: '/a|b' });
    expect(lines(result.text)[8]).toMatch(/^\| VASP {4}\| \/a\\\|b +\|$/);
    expect(lines(result.text)[8]).toHaveLength(lines(markdown)[8].length);
    expect(readTables(result.text)[0].rows[2].cells).toEqual(['VASP', '/a|b']);
  });
});

describe('finding the table', () => {
  test('names the headers it found when no table has the columns', () => {
    const message = errorOf(() => edit(rst, { key: 'A', value: '/a', keyColumns: ['Name'], valueColumns: ['Image'], file: 'docs/images.rst' })).message;
    expect(message).toBe('no table with columns Name and Image in docs/images.rst (found tables with headers: line 10: 软件 | 位置)');
  });

  test('says which column is missing when a table has only one of them', () => {
    expect(errorOf(() => edit(rst, { key: 'A', value: '/a', valueColumns: ['镜像'] })).message).toBe(
      'the table at line 10 of the document has no column 镜像 (its columns: 软件 | 位置); name the column to use',
    );
  });

  test('refuses a key listed twice, values that would break a line, and empty values', () => {
    const twice = rst.replace('VASP     /lustre', 'pytorch  /lustre');
    expect(errorOf(() => edit(twice, { key: 'PyTorch', value: '/x' })).message).toBe(
      'the table at line 10 of the document lists PyTorch 2 times (lines 13, 17); remove the duplicates by hand first',
    );
    expect(errorOf(() => edit(rst, { key: 'PyTorch', value: '/a\n/b' })).message).toMatch(/U\+000A, which would break/);
    expect(errorOf(() => edit(rst, { key: 'PyTorch', value: '/a\u2028b' })).message).toMatch(/U\+2028/);
    expect(errorOf(() => edit(rst, { key: 'PyTorch', value: '  ' })).message).toMatch(/value is empty/);
  });

  test('with two candidate tables, appends nowhere but replaces where the key is', () => {
    const two = `${rst}\n${rst.slice(rst.indexOf('========'), rst.indexOf('使用方法')).replace(/PyTorch/g, 'Caffe   ')}`;
    expect(errorOf(() => edit(two, { key: 'NAMD', value: '/n' })).message).toMatch(/^2 tables in the document have columns 软件 and 位置 \(lines 10, 29\)/);
    expect(edit(two, { key: 'Caffe', value: '/c' }).table.startLine).toBe(29);
    expect(errorOf(() => edit(two, { key: 'Gromacs', value: '/g' })).message).toMatch(/listed in 2 tables/);
  });

  test('ignores tables in literal blocks and comments, and edits one inside a table directive keeping its indent', () => {
    const text = [
      'Example::',
      '',
      '   ==== ====',
      '   软件 位置',
      '   ==== ====',
      '',
      '.. table:: 预置镜像',
      '',
      '   ======== ====',
      '   软件     位置',
      '   ======== ====',
      '   PyTorch  /p',
      '   ======== ====',
      '',
      '..',
      '   ==== ====',
      '   软件 位置',
      '   ==== ====',
      '',
    ].join('\n');
    expect(readTables(text).map((t) => t.startLine)).toEqual([9]);
    const result = edit(text, { key: 'PyTorch', value: '/pytorch' });
    expect(lines(result.text).slice(8, 13)).toEqual(['   ======== ========', '   软件     位置', '   ======== ========', '   PyTorch  /pytorch', '   ======== ========']);
  });

  test('refuses to append to a simple table whose first column would be empty', () => {
    const text = ['====  ====  ====', 'Note  软件  位置', '====  ====  ====', 'x     A     /a', '====  ====  ====', ''].join('\n');
    expect(edit(text, { key: 'A', value: '/b' }).operation).toBe('replaced');
    expect(errorOf(() => edit(text, { key: 'B', value: '/b' })).message).toMatch(/its first column would be empty; add the row by hand/);
  });

  test('reads a simple table with a multi-line row and a column span the way docutils does', () => {
    const text = ['=====  =====  ======', '软件   位置   说明', '=====  =====  ======', 'A      /a     first', '              second', 'spans two     x', '------------  ------', 'B      /b', '=====  =====  ======', ''].join('\n');
    expect(readTables(text)[0].rows).toEqual([
      { cells: ['A', '/a', 'first\nsecond'], line: 4 },
      { cells: ['spans two', '', 'x'], line: 6 },
      { cells: ['B', '/b', ''], line: 8 },
    ]);
    const result = edit(text, { key: 'A', value: '/a/longer' });
    expect(lines(result.text)).toEqual([
      '=====  =========  ======',
      '软件   位置       说明',
      '=====  =========  ======',
      'A      /a/longer  first',
      '                  second',
      'spans two         x',
      '----------------  ------',
      'B      /b',
      '=====  =========  ======',
      '',
    ]);
  });

  test('a malformed table is reported alongside the tables it found', () => {
    const text = ['===== =====', '软件  位置', '===== =====', 'toolongkey /x', '===== =====', ''].join('\n');
    expect(readTables(text)).toEqual([]);
    expect(errorOf(() => edit(text, { key: 'A', value: '/a' })).message).toBe(
      'no table with columns 软件/Software and 位置/Location in the document (found no tables); docutils would also reject: line 4: Malformed table. Text in column margin in table line 4.',
    );
  });
});

describe('unifiedDiff', () => {
  test('shows the changed lines with three lines of context', () => {
    const result = edit(rst, { key: 'VASP', value: '/lustre/share/img/vasp-6.simg' });
    expect(unifiedDiff(rst, result.text, 'docs/images.rst')).toBe(
      [
        '--- docs/images.rst',
        '+++ docs/images.rst',
        '@@ -14,7 +14,7 @@',
        ' Gromacs  /lustre/share/img/gromacs-2018.2.simg',
        ' OpenFOAM /lustre/share/img/openfoam-7.simg',
        ' LAMMPS   /lustre/share/img/lammps-2019.8.simg',
        '-VASP     /lustre/share/img/vasp-5.4.4.simg',
        '+VASP     /lustre/share/img/vasp-6.simg',
        ' ======== ========================================',
        ' ',
        ' 使用方法',
        '',
      ].join('\n'),
    );
    expect(unifiedDiff(rst, rst, 'x')).toBe('');
  });
});

describe('escaping: what is written reads back as it was asked for', () => {
  const row = (text: string, key: string): string => lines(text).find((l) => l.startsWith(key))!;

  test('RST: markup characters, enumerators, comments, backslashes and rules are escaped; plain paths are not', () => {
    const cases: [string, string][] = [
      ['==========', '\\=========='],
      ['/lustre/`x`.sif', '/lustre/\\`x\\`.sif'],
      ['1. /x.sif', '\\1. /x.sif'],
      ['.. /x.sif', '\\.. /x.sif'],
      ['/a\\b.sif', '/a\\\\b.sif'],
      ['- /x.sif', '\\- /x.sif'],
      ['/x/image_.sif', '/x/image\\_.sif'],
      ['x::', 'x:\\:'],
      ['\\\\', '\\ \\\\\\\\'],
      ['/lustre/share/img/my_image-1.0.sif', '/lustre/share/img/my_image-1.0.sif'],
    ];
    for (const [value, written] of cases) {
      const result = edit(rst, { key: 'VASP', value });
      expect(row(result.text, 'VASP')).toBe(`VASP     ${written}`);
      expect(readTables(result.text)[0].rows[4].cells).toEqual(['VASP', value]);
    }
  });

  test('a key is compared as it reads: *PyTorch* is its own row, and a second edit finds it again', () => {
    const once = edit(rst, { key: '*PyTorch*', value: '/x/a.sif' });
    expect(once.operation).toBe('appended');
    expect(row(once.text, '\\*')).toBe('\\*PyTorch\\* /x/a.sif');
    const twice = edit(once.text, { key: '*PyTorch*', value: '/x/b.sif' });
    expect(twice.operation).toBe('replaced');
    expect(readTables(twice.text)[0].rows.map((r) => r.cells[0])).toEqual(['PyTorch', 'Gromacs', 'OpenFOAM', 'LAMMPS', 'VASP', '*PyTorch*']);
    expect(edit(twice.text, { key: 'PyTorch', value: '/x/c.sif' }).oldValue).toBe('/lustre/share/img/pytorch-19.10-py3.simg');
  });

  test('cells with markup read as docutils shows them, for keys and for the listed paths', () => {
    const text = [
      '========== ==========================================',
      '软件       位置',
      '========== ==========================================',
      '*PyTorch*  ``/lustre/share/img/pytorch-19.10-py3.simg``',
      'VASP       /lustre/share/img/my\\_vasp\\_.simg',
      '========== ==========================================',
      '',
    ].join('\n');
    expect(readTables(text)[0].rows.map((r) => r.cells)).toEqual([
      ['PyTorch', '/lustre/share/img/pytorch-19.10-py3.simg'],
      ['VASP', '/lustre/share/img/my_vasp_.simg'],
    ]);
    expect(listedValues(text)).toEqual(['/lustre/share/img/pytorch-19.10-py3.simg', '/lustre/share/img/my_vasp_.simg']);
    expect(edit(text, { key: 'pytorch', value: '/lustre/share/img/pytorch-19.10-py3.simg' }).operation).toBe('unchanged');
  });

  test('Markdown: pipes, backslashes and inline markup are escaped; a key with an escaped pipe can be edited', () => {
    const result = edit(markdown, { key: 'VASP', value: '/a|b\\*c*_d_.sif' });
    expect(lines(result.text)[8]).toMatch(/^\| VASP {4}\| \/a\\\|b\\\\\\\*c\\\*\\_d\\_\.sif +\|$/);
    expect(readTables(result.text)[0].rows[2].cells).toEqual(['VASP', '/a|b\\*c*_d_.sif']);
    const piped = ['| 软件 | 位置 |', '| --- | --- |', '| a \\| b | /x |', ''].join('\n');
    const replaced = edit(piped, { key: 'a | b', value: '/y' });
    expect(replaced.operation).toBe('replaced');
    expect(lines(replaced.text)[2]).toBe('| a \\| b | /y |');
  });

  test('Markdown: a compact row whose first cell would start a list gets a leading pipe', () => {
    const result = edit(markdown, { key: '- x', value: '/x.sif', keyColumns: ['Name'], valueColumns: ['Path'] });
    expect(lines(result.text)[21]).toBe('| - x | /x.sif |');
    expect(readTables(result.text)[1].rows[1].cells).toEqual(['- x', '/x.sif', '']);
  });

  test('a value that has no UTF-8 form is refused, naming it', () => {
    expect(errorOf(() => edit(rst, { key: 'VASP', value: '/x/\uD800.sif' })).message).toMatch(/value "\/x\/\\ud800.sif" contains a lone UTF-16 surrogate/);
  });
});

describe('bytes: lines outside the edited row keep their bytes', () => {
  /** The source with invalid UTF-8 at the end of the line that contains `at`. */
  const invalid = (source: string | Buffer, at: string): Buffer => {
    const bytes = Buffer.from(source);
    const end = bytes.indexOf(0x0a, bytes.indexOf(Buffer.from(at, 'utf8')));
    return Buffer.concat([bytes.subarray(0, end), Buffer.from([0xff, 0xc3, 0x28, 0xe4, 0xb8]), bytes.subarray(end)]);
  };
  const byteLines = (buf: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    let at = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, at)) {
      out.push(buf.subarray(at, i + 1));
      at = i + 1;
    }
    if (at < buf.length) out.push(buf.subarray(at));
    return out;
  };

  test('invalid UTF-8 before, inside and after the table survives an edit byte for byte', () => {
    const source = Buffer.concat([invalid(invalid(rst, '预置镜像'), 'Gromacs'), Buffer.from([0x80, 0x0a])]);
    const result = editTableBytes(source, { key: 'VASP', value: '/lustre/share/img/vasp-6.simg' });
    const before = byteLines(source);
    const after = byteLines(result.bytes);
    expect(after).toHaveLength(before.length);
    const changed = after.map((l, i) => (l.equals(before[i]) ? -1 : i)).filter((i) => i >= 0);
    expect(changed).toEqual([16]);
    expect(after[16].toString()).toBe('VASP     /lustre/share/img/vasp-6.simg\n');
    expect(listedValues(result.bytes)).toContain('/lustre/share/img/vasp-6.simg');
  });

  test('a line that must be rewritten but is not valid UTF-8 is refused, and the bytes stay as they were', () => {
    // An invalid byte in place of an ASCII letter keeps the grid's columns where they were.
    const withByte = (text: string, marker: string): Buffer => {
      const bytes = Buffer.from(text, 'utf8');
      bytes[bytes.indexOf(Buffer.from(marker, 'utf8')) + Buffer.byteLength(marker) - 1] = 0xff;
      return bytes;
    };
    const source = withByte(grid.replace('分子动力学      ', '分子动力学x     '), '分子动力学x');
    const copy = Buffer.from(source);
    // A longer value widens its column, and the Gromacs line would have to be written anew.
    expect(() => editTableBytes(source, { key: 'VASP', value: LONG })).toThrow(/line 10 of the document is not valid UTF-8, and this edit would rewrite it/);
    expect(source.equals(copy)).toBe(true);
    // One that fits changes only the VASP row, and the Gromacs line keeps its invalid byte.
    expect(editTableBytes(source, { key: 'VASP', value: '/v.sif' }).bytes.includes(Buffer.from([0xff]))).toBe(true);
    // The edited row itself, with an invalid byte in another cell.
    const inRow = withByte(grid.replace('需要许可证       ', '需要许可证x      '), '需要许可证x');
    expect(() => editTableBytes(inRow, { key: 'VASP', value: '/v.sif' })).toThrow(/line 13 of the document is not valid UTF-8/);
  });

  test('a byte order mark stays; the text API still works on strings', () => {
    const source = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(rst, 'utf8')]);
    const result = editTableBytes(source, { key: 'VASP', value: '/v.sif' });
    expect([...result.bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(result.bytes.subarray(3).toString()).toBe(edit(rst, { key: 'VASP', value: '/v.sif' }).text);
  });
});

describe('CR-only line endings', () => {
  test('tables are found and edited in all three syntaxes, and the file keeps its lone CRs', () => {
    for (const [text, syntax] of [
      [rst, 'rst'],
      [grid, 'rst'],
      [markdown, 'markdown'],
    ] as const) {
      const cr = text.replace(/\n/g, '\r');
      expect(readTables(cr, { syntax }).map((t) => t.rows.length)).toEqual(readTables(text, { syntax }).map((t) => t.rows.length));
      for (const spec of [
        { key: 'VASP', value: LONG },
        { key: 'CP2K', value: '/x/cp2k.sif' },
      ]) {
        const result = edit(cr, { ...spec, syntax });
        expect(result.text.includes('\n')).toBe(false);
        expect(result.text.replace(/\r/g, '\n')).toBe(edit(text, { ...spec, syntax }).text);
      }
    }
  });

  test('each line keeps its own ending in a mixed file; the diff shows only the changed line', () => {
    // (A lone CR before an empty line would read as CRLF; those lines end in LF.)
    const mixed = lines(rst)
      .map((l, i, all) => l + (i % 3 === 0 ? '\r\n' : i % 3 === 1 && all[i + 1] !== '' ? '\r' : '\n'))
      .join('');
    const result = edit(mixed, { key: 'Gromacs', value: '/g.sif' });
    expect(result.text.replace('Gromacs  /g.sif', 'Gromacs  /lustre/share/img/gromacs-2018.2.simg')).toBe(mixed);
    expect(unifiedDiff(mixed, result.text, 'x').split('\n').filter((l) => /^[-+][^-+]/.test(l))).toEqual([
      '-Gromacs  /lustre/share/img/gromacs-2018.2.simg\r',
      '+Gromacs  /g.sif\r',
    ]);
  });
});

describe('long tables: lines are read from the document and written one at a time', () => {
  // Thousands of lines: more than the parsers keep at hand, and more new lines than the text API joins at once.
  const ROWS = 2100;
  const key = (i: number): string => `software-${i}`;
  const path = (i: number): string => `/lustre/share/img/software-${i}-24.05-py3.simg`;
  // Three columns in the simple table: its last column is open-ended, and widening 位置 moves the one after it.
  const simpleBorder = `${'='.repeat(14)} ${'='.repeat(48)} ${'='.repeat(4)}`;
  const gridLine = (ch: string): string => `+${ch.repeat(16)}+${ch.repeat(50)}+`;
  const documents: Record<string, string> = {
    'rst-simple': [
      '预置镜像',
      '========',
      '',
      simpleBorder,
      `软件           位置${' '.repeat(45)}备注`,
      simpleBorder,
      ...Array.from({ length: ROWS }, (_, i) => `${key(i).padEnd(14)} ${path(i).padEnd(48)} ok`),
      simpleBorder,
      '',
      'After the table.',
      '',
    ].join('\n'),
    // CRLF line endings, kept on every rewritten line.
    'rst-grid': [
      gridLine('-'),
      `| 软件${' '.repeat(10)} | 位置${' '.repeat(44)} |`,
      gridLine('='),
      ...Array.from({ length: ROWS }, (_, i) => [`| ${key(i).padEnd(14)} | ${path(i).padEnd(48)} |`, gridLine('-')]).flat(),
      'After the table.',
      '',
    ].join('\r\n'),
    markdown: [
      '# 预置镜像',
      '',
      `| 软件${' '.repeat(10)} | 位置${' '.repeat(44)} |`,
      `| ${'-'.repeat(14)} | ${'-'.repeat(48)} |`,
      ...Array.from({ length: ROWS }, (_, i) => `| ${key(i).padEnd(14)} | ${path(i).padEnd(48)} |`),
      '',
      'After the table.',
      '',
    ].join('\n'),
  };

  test.each(Object.keys(documents))('%s: a widening edit in the middle rewrites every line, reads back whole, and text and bytes agree', (format) => {
    const source = documents[format];
    const value = `${path(1500)}-cuda12.4-cudnn9-nccl2.21`;
    const text = editTable(source, { key: key(1500), value });
    const bytes = editTableBytes(Buffer.from(source, 'utf8'), { key: key(1500), value });
    expect(text.operation).toBe('replaced');
    expect(bytes.bytes.toString('utf8')).toBe(text.text);
    const [before] = readTables(source);
    const [after] = readTables(text.text);
    expect(after.format).toBe(format);
    expect(after.header).toEqual(before.header);
    expect(after.rows.map((r) => r.cells)).toEqual(before.rows.map((r, i) => (i === 1500 ? r.cells.map((c, j) => (j === 1 ? value : c)) : r.cells)));
    expect(after.rows[1500].cells.slice(0, 2)).toEqual([key(1500), value]);
    // The table's lines all changed (the column is wider); the lines around it did not.
    const oldLines = source.split(/\r?\n/);
    const newLines = text.text.split(/\r?\n/);
    expect(newLines).toHaveLength(oldLines.length);
    const table = [before.startLine - 1, before.endLine];
    expect(newLines.slice(0, table[0])).toEqual(oldLines.slice(0, table[0]));
    expect(newLines.slice(table[1])).toEqual(oldLines.slice(table[1]));
    expect(newLines.slice(...table).every((line, i) => line !== oldLines[table[0] + i] || line === '')).toBe(true);
    expect(text.text.split('\r\n').length).toBe(source.split('\r\n').length);
    // A second edit finds the rows where the first left them, and one that fits changes one line.
    const again = editTableBytes(bytes.bytes, { key: key(2099), value: '/x.sif' });
    const changed = again.bytes.toString('utf8').split('\n').filter((line, i) => line !== text.text.split('\n')[i]);
    expect(changed).toHaveLength(1);
    expect(readTables(again.bytes)[0].rows[2099].cells.slice(0, 2)).toEqual([key(2099), '/x.sif']);
  });

  test('a row far longer than the rest of the document is written whole (the output grows past its first size)', () => {
    const source = '| 软件 | 位置 |\n| - | - |\n| a | /a.sif |\n| b | /b.sif |\n';
    const value = `/lustre/${'镜像'.repeat(20000)}.sif`;
    const result = editTableBytes(Buffer.from(source, 'utf8'), { key: 'a', value });
    expect(result.bytes.toString('utf8')).toBe(`| 软件 | 位置 |\n| - | - |\n| a | ${value} |\n| b | /b.sif |\n`);
    expect(readTables(result.bytes)[0].rows.map((r) => r.cells)).toEqual([['a', value], ['b', '/b.sif']]);
  });
});
