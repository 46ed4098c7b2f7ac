// The inputs of tag following and disk placement as the configuration reads them: every problem names its input.
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type Problem } from '../../src/config/config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-config-'));
writeFileSync(path.join(dir, 'image.def'), 'Bootstrap: docker\nFrom: ubuntu:22.04\n');
writeFileSync(path.join(dir, 'base.sif'), '');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(inputs: Record<string, string>): Problem[] {
  try {
    loadConfig((name) => inputs[name], { cwd: dir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('source-tag-pattern', () => {
  test('is parsed with a registry source, with or without a tag there', () => {
    for (const source of ['docker://nvcr.io/nvidia/pytorch', 'docker://nvcr.io/nvidia/pytorch:24.10-py3']) {
      const config = loadConfig((name) => ({ source, 'source-tag-pattern': '{yy}.{mm}-py3' })[name], { cwd: dir });
      expect(config.build.sourceTagPattern?.text).toBe('{yy}.{mm}-py3');
      expect(config.build.sourceTagPattern?.regex.test('24.10-py3')).toBe(true);
    }
  });

  test.each([
    [{ definition: 'image.def' }, 'follows the tags of `source`; a definition names its base in `From:`'],
    [{ source: 'base.sif' }, `source-tag-pattern follows a registry's tags; source ${path.join(dir, 'base.sif')} is not a docker:// or oras:// reference`],
    [{ source: `docker://nvcr.io/nvidia/pytorch@sha256:${'a'.repeat(64)}` }, /is pinned to a digest$/],
    [{ source: 'docker://nvcr.io/nvidia/pytorch:latest' }, 'the tag latest in source does not match source-tag-pattern {yy}.{mm}-py3'],
  ])('is refused with %j, saying why', (inputs, message) => {
    const found = problems({ ...inputs, 'source-tag-pattern': '{yy}.{mm}-py3' }).filter((p) => p.input === 'source-tag-pattern');
    expect(found).toHaveLength(1);
    if (typeof message === 'string') expect(found[0].message).toBe(message);
    else expect(found[0].message).toMatch(message);
  });

  test('a malformed pattern is refused, naming the input and the column', () => {
    expect(problems({ source: 'docker://nvcr.io/nvidia/pytorch', 'source-tag-pattern': '{yy}.{mm' })).toEqual([
      { input: 'source-tag-pattern', message: "'{' at column 6 of {yy}.{mm does not open a field such as {yy}, {mm} or {n} (letters, digits and _ in braces)" },
    ]);
  });
});

describe('tmp-dir', () => {
  test('is resolved against the working directory', () => {
    const config = loadConfig((name) => ({ definition: 'image.def', 'tmp-dir': '.' })[name], { cwd: dir });
    expect(config.build.tmpDir).toBe(dir);
  });

  test('must be an existing directory', () => {
    expect(problems({ definition: 'image.def', 'tmp-dir': 'nowhere' })).toEqual([{ input: 'tmp-dir', message: 'directory does not exist: nowhere' }]);
    expect(problems({ definition: 'image.def', 'tmp-dir': 'base.sif' })).toEqual([{ input: 'tmp-dir', message: 'not a directory: base.sif' }]);
  });
});
