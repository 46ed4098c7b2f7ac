// Choosing where the builder's files go: real directories measured with statfs, candidates compared by free space.
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { candidateDirs, chooseCandidate, DiskSpaceError, estimateSpace, FACTORS, measureCandidates, type Candidate } from '../../src/build/disk.js';

const MiB = 1024 * 1024;

describe('the estimate', () => {
  test('is the compressed size times the measured factors; a base whose size cannot be known is named', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-disk-unit-'));
    try {
      const file = path.join(dir, 'base.sif');
      writeFileSync(file, Buffer.alloc(1000));
      const e = await estimateSpace([{ kind: 'file', path: file, shown: 'base.sif' }, { kind: 'unknown', shown: 'Bootstrap: debootstrap' }]);
      expect(e).toEqual({
        layers: 1000,
        cache: Math.ceil(1000 * FACTORS.cache),
        temporary: Math.ceil(1000 * FACTORS.temporary),
        sif: Math.ceil(1000 * FACTORS.sif),
        unsized: ['Bootstrap: debootstrap (its size is not known before it runs)'],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('candidates', () => {
  const estimate = { layers: 10, cache: 10, temporary: 40, sif: 10, unsized: [] };

  test('default to RUNNER_TEMP, TMPDIR and /mnt; the environment variable replaces them; tmp-dir stands alone', () => {
    expect(candidateDirs({ RUNNER_TEMP: '/r', TMPDIR: '/t' }, undefined)).toEqual({ dirs: ['/r', '/t', '/mnt'], from: 'RUNNER_TEMP, TMPDIR and /mnt' });
    expect(candidateDirs({ BUILD_IMAGE_TMP_CANDIDATES: '/a::/b', RUNNER_TEMP: '/r' }, undefined)).toEqual({ dirs: ['/a', '/b'], from: 'BUILD_IMAGE_TMP_CANDIDATES' });
    expect(candidateDirs({ BUILD_IMAGE_TMP_CANDIDATES: '/a' }, '/given')).toEqual({ dirs: ['/given'], from: 'tmp-dir' });
  });

  test('the SIF counts where output is; two directories on one file system are one candidate; a missing one is skipped', async () => {
    const a = mkdtempSync(path.join(os.tmpdir(), 'bi-disk-unit-'));
    const b = mkdtempSync(path.join(os.tmpdir(), 'bi-disk-unit-'));
    try {
      const { usable, skipped } = await measureCandidates([a, b, path.join(a, 'missing')], estimate, path.join(a, 'out.sif'));
      expect(usable).toHaveLength(1);
      expect(usable[0]).toMatchObject({ dir: a, device: statSync(a).dev, needed: 60 });
      expect(usable[0].free).toBeGreaterThan(0);
      expect(skipped).toEqual([`${path.join(a, 'missing')}: does not exist`]);
      const elsewhere = await measureCandidates([a], estimate, '/proc/out.sif');
      expect(elsewhere.usable[0].needed).toBe(50);
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });

  const c = (dir: string, free: number, needed: number): Candidate => ({ dir, free, needed, device: free });

  test('of those the build fits on, the one with the most free space wins', () => {
    expect(chooseCandidate([c('/a', 5 * MiB, 1 * MiB), c('/b', 9 * MiB, 1 * MiB)], [], estimate, 'x').dir).toBe('/b');
    // The emptiest file system holds output too, and the SIF does not fit there beside the rest.
    expect(chooseCandidate([c('/out-fs', 10 * MiB, 12 * MiB), c('/b', 9 * MiB, 6 * MiB)], [], estimate, 'x').dir).toBe('/b');
  });

  test('when none fits, one error with every candidate and the skipped ones', () => {
    const fail = () => chooseCandidate([c('/a', 1 * MiB, 6 * MiB)], ['/mnt: not writable'], estimate, 'RUNNER_TEMP, TMPDIR and /mnt');
    expect(fail).toThrow(DiskSpaceError);
    expect(fail).toThrow(/\nFree space where it could go \(RUNNER_TEMP, TMPDIR and \/mnt\): \/a: 1\.0 MiB \(1048576 bytes\) free, 6\.0 MiB \(6291456 bytes\) needed\.\nSkipped: \/mnt: not writable\.\nNothing was pulled\./);
  });
});
