import { describe, expect, test } from '@jest/globals';
import { buildKey, contextFromEnv, LABELS, provenanceLabels, type KeyInputs } from '../../src/build/provenance.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { augmentDefinition, pinReference, recipeForSource, SCRUB_INHERITED_LABELS, stageBases } from '../../src/build/recipe.js';

const SCRUB = SCRUB_INHERITED_LABELS.map((l) => `    ${l}`).join('\n');
import { parseDefinition } from '../../src/build/definition.js';
import { parseSource } from '../../src/build/source.js';

const key: KeyInputs = {
  sourceUri: 'docker://ubuntu:22.04',
  sourceDigests: [`sha256:${'1'.repeat(64)}`],
  buildArgs: { B: '2', A: '1' },
  labels: {},
  builder: 'apptainer 1.4.5',
  compression: 'gzip',
  fakeroot: true,
  actionVersion: '1.2.0',
  keyInputs: [],
};

describe('build key', () => {
  test('is stable under reordering of build args and labels', () => {
    expect(buildKey(key)).toBe(buildKey({ ...key, buildArgs: { A: '1', B: '2' } }));
    expect(buildKey(key)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test.each<[string, Partial<KeyInputs>]>([
    ['a new upstream digest', { sourceDigests: [`sha256:${'2'.repeat(64)}`] }],
    ['a different build arg', { buildArgs: { A: '1', B: '3' } }],
    ['another definition', { definitionSha256: 'sha256:abc' }],
    ['another builder major version', { builder: 'apptainer 2.0.0' }],
    ['another builder', { builder: 'singularity-ce 1.4.5' }],
    ['another compression', { compression: 'xz' }],
    ['another release of this action', { actionVersion: '1.3.0' }],
    ['other %files contents', { hostFiles: 'sha256:def' }],
    ['a key input', { keyInputs: ['torch 2.6.0.dev20261130'] }],
  ])('changes with %s', (_what, change) => {
    expect(buildKey({ ...key, ...change })).not.toBe(buildKey(key));
  });

  test('a patch or minor release of the builder keeps the key (the label still names the full version)', () => {
    expect(buildKey({ ...key, builder: 'apptainer 1.5.0' })).toBe(buildKey(key));
  });
});

describe('provenance labels', () => {
  test('name the repository, commit, run and source from the Actions environment', () => {
    const context = contextFromEnv(
      { GITHUB_REPOSITORY: 'sjtu-hpc/images', GITHUB_SHA: 'abc123', GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2', GITHUB_SERVER_URL: 'https://github.com' },
      new Date('2026-11-28T00:00:00Z'),
    );
    const labels = provenanceLabels({ context, key, buildKey: 'sha256:k' });
    expect(labels).toEqual({
      [LABELS.source]: 'https://github.com/sjtu-hpc/images',
      [LABELS.revision]: 'abc123',
      [LABELS.created]: '2026-11-28T00:00:00.000Z',
      [LABELS.sourceUri]: 'docker://ubuntu:22.04',
      [LABELS.sourceDigest]: key.sourceDigests[0],
      [LABELS.builder]: 'apptainer 1.4.5',
      [LABELS.runUrl]: 'https://github.com/sjtu-hpc/images/actions/runs/42/attempts/2',
      [LABELS.buildKey]: 'sha256:k',
    });
  });

  test('outside Actions, only what is known is written', () => {
    const labels = provenanceLabels({ context: contextFromEnv({}, new Date(0)), key, buildKey: 'sha256:k' });
    expect(labels[LABELS.source]).toBeUndefined();
    expect(labels[LABELS.runUrl]).toBeUndefined();
    expect(labels[LABELS.buildKey]).toBe('sha256:k');
  });
});

describe('the recipe the builder runs', () => {
  const digest = `sha256:${'d'.repeat(64)}`;

  test('a docker source becomes a two-line recipe pinned to the digest, with the labels', () => {
    const source = parseSource('docker://127.0.0.1:5000/tiny:1.0', '/');
    expect(recipeForSource(source, digest, { 'a.b': 'c d' })).toBe(
      `Bootstrap: docker\nFrom: 127.0.0.1:5000/tiny@${digest}\n\n%setup\n${SCRUB}\n\n%labels\n    a.b c d\n`,
    );
  });

  test('labels are appended to the final stage and each registry base is pinned; other lines stay as written', () => {
    const text = [
      'Bootstrap: docker',
      'From: golang:1.22 ',
      'Stage: build',
      '%post',
      '    go build -o /app .',
      '',
      'Bootstrap: docker',
      'From: {{ BASE }}',
      'Stage: final',
      '%arguments',
      '    BASE=alpine:3.20',
      '%files from build',
      '    /app /app',
      '%labels',
      '    maintainer hpc@sjtu.edu.cn',
      '',
      '%runscript',
      '    exec /app',
      '',
    ].join('\n');
    const def = parseDefinition(text);
    const bases = stageBases(def, {});
    expect(bases.map((b) => [b.line, b.from])).toEqual([
      [2, 'golang:1.22'],
      [8, 'alpine:3.20'],
    ]);
    const pins = new Map(bases.map((b) => [b.line, pinReference(b.from, digest)]));
    const out = augmentDefinition(text, pins, { 'x.y': 'z' }).split('\n');
    expect(out[1]).toBe(`From: golang@${digest}`);
    expect(out[7]).toBe(`From: alpine@${digest}`);
    expect(out.slice(13, 16)).toEqual(['%labels', '    maintainer hpc@sjtu.edu.cn', '    x.y z']);
    expect(out.slice(16, 20)).toEqual(['', '%runscript', '    exec /app', '']);
    // The base's provenance labels are scrubbed before this build's are added (a %setup of the final stage).
    expect(out.slice(20).join('\n')).toBe(`%setup\n${SCRUB}\n`);
  });

  test('a file without %labels gets one at its end; CRLF endings are kept', () => {
    const out = augmentDefinition('Bootstrap: docker\r\nFrom: busybox\r\n%post\r\n    true\r\n\r\n', new Map(), { k: 'v' });
    expect(out).toBe(`Bootstrap: docker\r\nFrom: busybox\r\n%post\r\n    true\r\n\r\n%setup\r\n${SCRUB.split('\n').join('\r\n')}\r\n\r\n%labels\r\n    k v\r\n`);
  });

  test('the scrub removes every provenance label of the base, keeps the rest as valid JSON, and leaves compact files alone', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-scrub-'));
    try {
      const file = path.join(dir, '.singularity.d', 'labels.json');
      mkdirSync(path.dirname(file));
      const run = (labels: string) => {
        writeFileSync(file, labels);
        execFileSync('/bin/sh', ['-c', SCRUB_INHERITED_LABELS.join('\n')], { env: { APPTAINER_ROOTFS: dir, PATH: '' } });
        return readFileSync(file, 'utf8');
      };
      const indented = JSON.stringify({ Author: 'x', [LABELS.source]: 'forged', 'keep.me': 'y "quoted" \\ back', [LABELS.runUrl]: 'forged' }, null, '\t');
      expect(JSON.parse(run(indented))).toEqual({ Author: 'x', 'keep.me': 'y "quoted" \\ back' });
      expect(JSON.parse(run(JSON.stringify({ [LABELS.buildKey]: 'forged' }, null, '\t')))).toEqual({});
      const compact = JSON.stringify({ a: 'b', [LABELS.source]: 'kept, since it cannot be filtered by line' });
      expect(run(compact)).toBe(compact);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('build args override %arguments defaults when finding bases', () => {
    const def = parseDefinition('Bootstrap: docker\nFrom: {{ BASE }}\n%arguments\n    BASE=alpine:3.20\n');
    expect(stageBases(def, { BASE: 'ubuntu:24.04' })[0].from).toBe('ubuntu:24.04');
  });
});
