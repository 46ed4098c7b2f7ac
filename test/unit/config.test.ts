import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type Problem } from '../../src/config/config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-config-'));
const def = path.join(dir, 'image.def');
writeFileSync(def, 'Bootstrap: docker\nFrom: ubuntu:22.04\n');

function problems(inputs: Record<string, string>): Problem[] {
  try {
    loadConfig((name) => inputs[name], { cwd: dir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  test('a definition build gets defaults for everything else', () => {
    const config = loadConfig((name) => ({ definition: 'image.def', name: 'pytorch' })[name], { cwd: dir });
    expect(config.stage).toBe('build');
    expect(config.build).toMatchObject({
      builder: 'auto',
      fakeroot: 'auto',
      compression: 'gzip',
      definition: def,
      output: path.join(dir, 'pytorch.sif'),
      buildArgs: {},
      dryRun: false,
    });
  });

  test('multi-line build args and labels become records; comments and blank lines are ignored', () => {
    const config = loadConfig(
      (name) => ({ definition: 'image.def', 'build-args': 'A=1\n\n# comment\nB = two words\n', labels: 'org.x=y' })[name],
      { cwd: dir },
    );
    expect(config.build.buildArgs).toEqual({ A: '1', B: 'two words' });
    expect(config.build.labels).toEqual({ 'org.x': 'y' });
  });

  test('a docker source is parsed into registry, repository and tag', () => {
    const config = loadConfig((name) => ({ source: 'docker://nvcr.io/nvidia/pytorch:24.10-py3' })[name], { cwd: dir });
    expect(config.build.source).toMatchObject({ kind: 'docker', ref: { registry: 'nvcr.io', repository: 'nvidia/pytorch', tag: '24.10-py3' } });
    expect(config.build.output).toBe(path.join(dir, 'image.sif'));
  });

  test.each([
    [{ source: 'docker://x', definition: 'image.def' }, 'source', /either `source` or `definition`, not both/],
    [{}, 'source', /nothing to build/],
    [{ source: 'docker://x', builder: 'docker' }, 'builder', /must be one of auto, apptainer, singularity; got 'docker'/],
    [{ definition: 'missing.def' }, 'definition', /file not found: missing.def/],
    [{ source: 'docker://x', output: 'nowhere/out.sif' }, 'output', /directory does not exist/],
    [{ definition: 'image.def', 'build-args': 'A=1\nNOVALUE' }, 'build-args', /line 2: expected KEY=VALUE.*got 'NOVALUE'/],
    [{ source: 'http://example.com/x.sif' }, 'source', /unsupported source scheme 'http:'/],
    [{ source: 'docker-archive:missing.tar' }, 'source', /file not found: missing.tar/],
    [{ source: 'docker://UPPER/Case' }, 'source', /invalid repository name/],
    [{ source: 'docker://x', fakeroot: 'maybe' }, 'fakeroot', /must be one of auto, true, false/],
    [{ source: 'docker://x', 'dry-run': 'perhaps' }, 'dry-run', /must be true or false/],
    [{ source: 'docker://x', 'registry-username': 'u' }, 'registry-password', /required when `registry-username` is set/],
    [{ source: 'docker://x', name: '../evil' }, 'name', /must be letters, digits/],
    [{ source: 'docker://x', stage: 'smoke' }, 'stage', /not available in this version yet/],
    [{ source: 'docker://x', compression: 'brotli' }, 'compression', /must be one of gzip, xz, zstd, lz4/],
  ])('%j is refused with a message naming %s', (inputs, input, message) => {
    const found = problems(inputs as Record<string, string>);
    expect(found).toHaveLength(1);
    expect(found[0].input).toBe(input);
    expect(found[0].message).toMatch(message);
  });

  test('all problems are reported at once', () => {
    const found = problems({ builder: 'x', fakeroot: 'y' });
    expect(found.map((p) => p.input).sort()).toEqual(['builder', 'fakeroot', 'source']);
  });
});
