import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { tableCommand } from '../../src/commands/table.js';
import { TableError, tableColumns } from '../../src/docs/table.js';

const fixture = readFileSync(fileURLToPath(new URL('../fixtures/docs/preset-images.rst', import.meta.url)), 'utf8');

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('build-image table', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bi-table-'));
    file = path.join(dir, 'images.rst');
    writeFileSync(file, fixture);
    chmodSync(file, 0o640);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('an explicit 软件 column finds an English copy of the table, as the pipeline does', async () => {
    const english = ['=========  ================================', 'Software   Location', '=========  ================================', 'VASP       /lustre/share/img/vasp-5.4.4.simg', '=========  ================================', ''].join('\n');
    writeFileSync(file, english);
    const out = sink();
    const code = await tableCommand({ file, key: 'VASP', value: '/lustre/share/img/vasp-6.4.simg', check: false, keyColumn: '软件', valueColumn: '位置' }, out.stream);
    expect(code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('VASP       /lustre/share/img/vasp-6.4.simg');
    // One rule for both front ends: a default name brings its English twin; another name stands alone.
    expect(tableColumns('软件', undefined)).toEqual({ keyColumns: ['软件', 'Software'], valueColumns: ['位置', 'Location'] });
    expect(tableColumns('Name', 'Path')).toEqual({ keyColumns: ['Name'], valueColumns: ['Path'] });
  });

  test('edits the file in place, keeps its mode and leaves no temporary file', async () => {
    const out = sink();
    const code = await tableCommand({ file, key: 'VASP', value: '/lustre/share/img/vasp-6.4.simg', check: false }, out.stream);
    expect(code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(fixture.replace('VASP     /lustre/share/img/vasp-5.4.4.simg', 'VASP     /lustre/share/img/vasp-6.4.simg'));
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['images.rst']);
    expect(out.text()).toBe(`${file}: VASP: /lustre/share/img/vasp-5.4.4.simg -> /lustre/share/img/vasp-6.4.simg\n`);
  });

  test('--check prints the diff, changes nothing and exits 1; 0 when nothing would change', async () => {
    const out = sink();
    expect(await tableCommand({ file, key: 'CP2K', value: '/lustre/share/img/cp2k.simg', check: true }, out.stream)).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe(fixture);
    expect(out.text()).toContain('@@ -15,6 +15,7 @@\n');
    expect(out.text()).toContain('+CP2K     /lustre/share/img/cp2k.simg\n');
    expect(out.text()).toMatch(/added \/lustre\/share\/img\/cp2k.simg \(not written: --check\)\n$/);
    const again = sink();
    expect(await tableCommand({ file, key: 'gromacs', value: '/lustre/share/img/gromacs-2018.2.simg', check: true }, again.stream)).toBe(0);
    expect(again.text()).toBe(`${file}: gromacs already has /lustre/share/img/gromacs-2018.2.simg\n`);
  });

  test('named columns and a failure that leaves the file untouched', async () => {
    await expect(tableCommand({ file, key: 'A', value: '/a', keyColumn: 'Name', valueColumn: 'Path', check: false }, sink().stream)).rejects.toThrow(TableError);
    await expect(tableCommand({ file, key: 'A', value: '/a', keyColumn: 'Name', check: false }, sink().stream)).rejects.toThrow(
      /table at line 10 of .*images\.rst has no column Name/,
    );
    expect(readFileSync(file, 'utf8')).toBe(fixture);
    expect(readdirSync(dir)).toEqual(['images.rst']);
  });

  test('a missing file is a message, not a stack trace', async () => {
    await expect(tableCommand({ file: path.join(dir, 'missing.rst'), key: 'A', value: '/a', check: false }, sink().stream)).rejects.toThrow('cannot read');
  });
});
