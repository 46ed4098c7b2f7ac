import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HostFileError, hostFiles } from '../../src/build/key-files.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-key-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'conf', 'sub'), { recursive: true });
writeFileSync(path.join(dir, 'conf', 'a.txt'), 'a');
writeFileSync(path.join(dir, 'conf', 'b.txt'), 'b');
writeFileSync(path.join(dir, 'conf', 'sub', 'c.ini'), 'c');
writeFileSync(path.join(dir, 'setup.sh'), 'echo hi');

const def = (files: string, setup = '') => `Bootstrap: docker\nFrom: alpine:3\n\n%files\n${files}\n${setup ? `\n%setup\n${setup}\n` : ''}`;

describe('host files of a definition', () => {
  test('a glob, a directory (walked) and a build-argument path, relative to the build directory', async () => {
    const found = await hostFiles(def('    conf/*.txt /opt/\n    {{ DIR }}/sub /opt/sub\n    "conf/a.txt" /a'), dir, { DIR: 'conf' });
    expect(found.files.map((f) => f.path)).toEqual(['conf/a.txt', 'conf/b.txt', 'conf/sub/c.ini']);
    expect(found.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('the digest follows file contents', async () => {
    const before = (await hostFiles(def('    conf /opt/conf'), dir, {})).digest;
    writeFileSync(path.join(dir, 'conf', 'sub', 'c.ini'), 'changed');
    expect((await hostFiles(def('    conf /opt/conf'), dir, {})).digest).not.toBe(before);
  });

  test('%setup: words naming existing files are covered, variables and missing paths are not', async () => {
    const setup = ['    sh ./setup.sh', '    cp $HOME/x ${APPTAINER_ROOTFS}/y', '    cp missing.txt /z', '    /bin/cp conf/b.txt /w && X=1 /bin/true conf/sub/c.ini'].join('\n');
    const found = await hostFiles(def('    conf/a.txt /a', setup), dir, {});
    // Command names (/bin/cp, /bin/true) are the runner's, not inputs of the image.
    expect(found.files.map((f) => f.path)).toEqual(['conf/a.txt', 'conf/b.txt', 'conf/sub/c.ini', 'setup.sh']);
  });

  test('%files from another stage copies nothing from the host', async () => {
    const text = 'Bootstrap: docker\nFrom: alpine:3\nStage: one\n\nBootstrap: docker\nFrom: alpine:3\n\n%files from one\n    /etc/passwd /p\n';
    expect(await hostFiles(text, dir, {})).toEqual({ files: [] });
  });

  test('a %files source that matches nothing is an error naming its line', async () => {
    await expect(hostFiles(def('    conf/*.none /opt/'), dir, {})).rejects.toThrow(new HostFileError(`definition line 5: %files source conf/*.none matches no file (relative paths are read from ${dir})`));
  });
});
