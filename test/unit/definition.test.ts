import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { header, parseArguments, parseDefinition, splitLines } from '../../src/build/definition.js';

const fixtures = fileURLToPath(new URL('../fixtures/definitions/', import.meta.url));
const read = (name: string): string => readFileSync(fixtures + name, 'utf8');

const simple = [
  'Bootstrap: docker', // 1
  'From: ubuntu:22.04', // 2
  '', // 3
  '%post -c /bin/bash', // 4
  '    apt-get update', // 5
  '', // 6
  '    apt-get install -y python3', // 7
  '', // 8
  '', // 9
  '%environment', // 10
  '    export LC_ALL=C', // 11
  '%runscript', // 12
].join('\n');

describe('parseDefinition: headers and sections', () => {
  test('reads the header and each section with its lines and body', () => {
    const [stage] = parseDefinition(simple).stages;
    expect(stage.headers).toEqual([
      { key: 'Bootstrap', value: 'docker', line: 1 },
      { key: 'From', value: 'ubuntu:22.04', line: 2 },
    ]);
    expect(stage).toMatchObject({ line: 1, endLine: 12, bootstrap: 'docker', from: 'ubuntu:22.04' });
    expect(stage.sections.map((s) => [s.name, s.line, s.bodyStartLine, s.endLine])).toEqual([
      ['post', 4, 5, 7],
      ['environment', 10, 11, 11],
      ['runscript', 12, 13, 12],
    ]);
    expect(stage.sections[0]).toMatchObject({
      args: '-c /bin/bash',
      body: '    apt-get update\n\n    apt-get install -y python3',
      raw: '%post -c /bin/bash',
    });
    expect(stage.sections[2].body).toBe('');
  });

  test('header keys are case-insensitive for lookup and the last value wins, as in apptainer', () => {
    const [stage] = parseDefinition('BOOTSTRAP: Docker\nfrom: a\nFROM: b\n').stages;
    expect(header(stage, 'Bootstrap')).toBe('Docker');
    expect(header(stage, 'from')).toBe('b');
    expect(header(stage, 'Stage')).toBeUndefined();
    expect(stage.bootstrap).toBe('docker');
    expect(stage.from).toBe('b');
  });

  test('header values lose trailing comments and join backslash continuations', () => {
    const [stage] = parseDefinition('Bootstrap: yum # the agent\nInclude: dnf \\\n  vim\nOSVersion: 9\n').stages;
    expect(stage.headers).toEqual([
      { key: 'Bootstrap', value: 'yum', line: 1 },
      { key: 'Include', value: 'dnf vim', line: 2 },
      { key: 'OSVersion', value: '9', line: 4 },
    ]);
  });

  test('header-area lines that are not Key: value are kept for the linter', () => {
    const [stage] = parseDefinition('Bootstrap: docker\nFrom: x\napt-get install foo\n').stages;
    expect(stage.invalidHeaderLines).toEqual([{ line: 3, text: 'apt-get install foo' }]);
  });

  test('app sections carry the app name, other arguments stay in args', () => {
    const def = parseDefinition('Bootstrap: scratch\n%apprun foo\n    exec foo\n%appinstall bar -x\n%files from build\n');
    expect(def.stages[0].sections.map((s) => ({ name: s.name, app: s.app, args: s.args }))).toEqual([
      { name: 'apprun', app: 'foo', args: '' },
      { name: 'appinstall', app: 'bar', args: '-x' },
      { name: 'files', app: undefined, args: 'from build' },
    ]);
  });

  test('section names are lowercased, unknown ones kept, and extra % signs dropped like apptainer does', () => {
    const def = parseDefinition(read('u2cb-enviroment.def'));
    expect(def.stages[0].sections.map((s) => [s.name, s.line])).toEqual([['post', 4], ['enviroment', 7]]);
    expect(parseDefinition('Bootstrap: scratch\n%%POST\n').stages[0].sections[0].name).toBe('post');
  });

  test('an indented %line still starts a section, because apptainer splits there too', () => {
    const [stage] = parseDefinition('Bootstrap: scratch\n%post\n    echo\n    %runscript\n').stages;
    expect(stage.sections.map((s) => [s.name, s.line, s.raw])).toEqual([['post', 2, '%post'], ['runscript', 4, '    %runscript']]);
  });
});

describe('parseDefinition: file encodings', () => {
  test('CRLF files give the same structure as LF files, without carriage returns', () => {
    const crlf = read('valid/crlf.def');
    expect(crlf).toContain('\r\n');
    const fromCrlf = parseDefinition(crlf);
    expect(fromCrlf).toEqual(parseDefinition(crlf.replace(/\r\n/g, '\n')));
    expect(JSON.stringify(fromCrlf)).not.toContain('\\r');
  });

  test('a UTF-8 byte-order mark is skipped', () => {
    const text = read('invalid/byte-order-mark.def');
    expect(text.charCodeAt(0)).toBe(0xfeff);
    const [stage] = parseDefinition(text).stages;
    expect(stage.headers[0]).toEqual({ key: 'Bootstrap', value: 'docker', line: 1 });
    expect(splitLines(text)[0]).toBe('Bootstrap: docker');
  });

  test('an empty file or one with only comments has no stages', () => {
    expect(parseDefinition('').stages).toEqual([]);
    expect(parseDefinition('# nothing yet\n\n').stages).toEqual([]);
  });
});

describe('parseDefinition: multi-stage builds', () => {
  test('each Bootstrap: line starts a stage with its own headers, name and sections', () => {
    const def = parseDefinition(read('valid/multistage.def'));
    expect(def.stages.map((s) => ({ name: s.name, from: s.from, line: s.line, sections: s.sections.map((x) => x.name) }))).toEqual([
      { name: 'build', from: 'golang:1.22-bookworm', line: 2, sections: ['files', 'post'] },
      { name: 'final', from: 'debian:bookworm-slim', line: 14, sections: ['files', 'runscript'] },
    ]);
    expect(def.stages[0].endLine).toBe(13);
    expect(def.stages[1].sections[0].args).toBe('from build');
  });

  test('comments before the first Bootstrap: are no stage; other text is one without Bootstrap', () => {
    expect(parseDefinition('# intro\nBootstrap: scratch\n').stages).toHaveLength(1);
    const def = parseDefinition('From: ubuntu\nBootstrap: docker\nFrom: debian\n');
    expect(def.stages.map((s) => [s.bootstrap, s.from, s.line])).toEqual([[undefined, 'ubuntu', 1], ['docker', 'debian', 2]]);
  });

  test('Bootstrap: at the start of any line starts a stage, even inside a section, as in apptainer', () => {
    const def = parseDefinition('Bootstrap: scratch\n%post\n    echo\nbootstrap: docker\nFrom: x\n');
    expect(def.stages).toHaveLength(2);
    expect(def.stages[0].sections[0].endLine).toBe(3);
    // Indented, it is plain body text.
    expect(parseDefinition('Bootstrap: scratch\n%post\n  Bootstrap: docker\n').stages).toHaveLength(1);
  });
});

describe('parseDefinition: build arguments', () => {
  test('%arguments defaults are kept per stage and merged for the whole file', () => {
    const def = parseDefinition('Bootstrap: scratch\n%arguments\n  A=1\n  B = two words \n\nBootstrap: scratch\n%arguments\n  B=3\n');
    expect(def.stages[0].argumentsDefaults).toEqual({ A: '1', B: 'two words' });
    expect(def.stages[1].argumentsDefaults).toEqual({ B: '3' });
    expect(def.argumentsDefaults).toEqual({ A: '1', B: '3' });
  });

  test('parseArguments reports the lines apptainer skips', () => {
    expect(parseArguments('  # comment\n  X=1\n  NOEQ\n  =v\n')).toEqual({
      values: { X: '1' },
      entries: [{ key: 'X', value: '1', line: 1 }],
      skipped: [
        { line: 2, text: 'NOEQ', problem: 'no-equals' },
        { line: 3, text: '=v', problem: 'empty-key' },
      ],
    });
  });

  test('every {{ NAME }} placeholder is found with its line, column and stage', () => {
    const def = parseDefinition(read('valid/arguments.def'));
    expect(def.templateVars.map((v) => [v.name, v.line, v.column, v.stage, v.commented])).toEqual([
      ['UBUNTU', 3, 14, 0, false],
      ['PYTHON_VERSION', 9, 19, 0, false],
      ['PACKAGE', 12, 42, 0, false],
      ['UNDEFINED_IN_COMMENT', 13, 28, 0, true],
      ['PYTHON_VERSION', 14, 28, 0, false],
      ['PYTHON_VERSION', 17, 19, 0, false],
    ]);
  });

  test('placeholders in text before the first stage belong to no stage', () => {
    const [v] = parseDefinition('# use {{ X }}\nBootstrap: scratch\n').templateVars;
    expect(v).toEqual({ name: 'X', line: 1, column: 7, stage: -1, commented: true });
  });

  test('a placeholder after a # on its line counts as commented, as apptainer skips it; #! does not', () => {
    const vars = parseDefinition('Bootstrap: scratch\n%post\n  echo "#x {{ A }}" {{ B }}\n  echo ${#arr} {{ C }}\n  #!{{ D }}\n  echo {{ E }} # {{ F }}\n').templateVars;
    expect(vars.map((v) => [v.name, v.commented])).toEqual([
      ['A', true],
      ['B', true],
      ['C', true],
      ['D', false],
      ['E', false],
      ['F', true],
    ]);
  });
});
