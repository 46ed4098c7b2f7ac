// The enroot image files written into a converted SIF's root: what enroot 4.1.2 reads back from them.
import { describe, expect, test } from '@jest/globals';
import { environmentFile, parseEnv, rcFile } from '../../src/image/enroot-config.js';
import { squashArgs } from '../../src/image/sqsh.js';

describe('parseEnv', () => {
  test('keeps the exported variables and drops the shell\'s and apptainer\'s own', () => {
    const text = ['PWD=/', 'SHLVL=1', '_=/usr/bin/env', 'PS1=Apptainer> ', 'GREETING=hello world', 'LD_LIBRARY_PATH=/opt/lib:/.singularity.d/libs', 'PATH=/opt/x:/usr/bin'].join('\n');
    expect(parseEnv(text)).toEqual({ env: [['GREETING', 'hello world'], ['LD_LIBRARY_PATH', '/opt/lib'], ['PATH', '/opt/x:/usr/bin']], dropped: [] });
  });

  test('an LD_LIBRARY_PATH of only apptainer\'s libs directory is dropped', () => {
    expect(parseEnv('LD_LIBRARY_PATH=/.singularity.d/libs\n').env).toEqual([]);
  });

  test('a value with a newline is dropped and named, since /etc/environment is one variable a line', () => {
    expect(parseEnv('A=1\nMULTI=first\nsecond line\nB=2\n')).toEqual({ env: [['A', '1'], ['B', '2']], dropped: ['MULTI'] });
  });
});

test('environmentFile quotes every value once, which enroot strips again', () => {
  expect(environmentFile([['A', 'a "quoted" value'], ['B', "'single'"], ['EMPTY', '']])).toBe('A="a "quoted" value"\nB="\'single\'"\nEMPTY=""\n');
});

test('rcFile changes to the working directory and runs the arguments, or the default command', () => {
  const rc = rcFile('/work dir', ['/.singularity.d/runscript']);
  expect(rc).toBe(
    [
      "mkdir -p '/work dir' 2> /dev/null",
      "cd '/work dir' && unset OLDPWD || exit 1",
      '',
      'if [ -s /etc/rc.local ]; then',
      '    . /etc/rc.local',
      'fi',
      '',
      'if [ $# -gt 0 ]; then',
      '    exec "$@"',
      'else',
      '    exec /.singularity.d/runscript',
      'fi',
      '',
    ].join('\n'),
  );
});

test('squashArgs: enroot\'s defaults, or ENROOT_SQUASH_OPTIONS and ENROOT_MAX_PROCESSORS as enroot reads them', () => {
  expect(squashArgs({ ENROOT_MAX_PROCESSORS: '3' })).toEqual(['-noappend', '-all-root', '-no-progress', '-quiet', '-processors', '3', '-comp', 'lzo', '-noD', '-exit-on-error']);
  expect(squashArgs({ ENROOT_MAX_PROCESSORS: '1', ENROOT_SQUASH_OPTIONS: '-comp zstd  -Xcompression-level 3' }).slice(6)).toEqual(['-comp', 'zstd', '-Xcompression-level', '3']);
});
