// The image's sha256 and its segments' from the worker thread, checked against node:crypto over the same bytes, and
// the segment grid the verifier hands it.
import { afterAll, describe, expect, test } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SftpConnection } from '../../src/publish/connect.js';
import { hashImage } from '../../src/publish/image-hash.js';
import { RangeMap } from '../../src/publish/ranges.js';
import { Coverage, SegmentVerifier } from '../../src/publish/segments.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hashImage', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-image-hash-'));
  const file = path.join(dir, 'image.sif');
  // Not a multiple of the worker's 4 MiB reads, and segment ends inside and between them.
  const bytes = randomBytes(9 * MiB + 123);
  writeFileSync(file, bytes);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('tells each segment in order and the whole sha256', async () => {
    const ends = [MiB, 5 * MiB + 7, 9 * MiB, bytes.length];
    const told: [number, number, string][] = [];
    const hashing = hashImage(file, bytes.length, ends, (start, end, digest) => told.push([start, end, digest]));
    await expect(hashing.sha256).resolves.toBe(sha(bytes));
    expect(told).toEqual([
      [0, MiB, sha(bytes.subarray(0, MiB))],
      [MiB, 5 * MiB + 7, sha(bytes.subarray(MiB, 5 * MiB + 7))],
      [5 * MiB + 7, 9 * MiB, sha(bytes.subarray(5 * MiB + 7, 9 * MiB))],
      [9 * MiB, bytes.length, sha(bytes.subarray(9 * MiB))],
    ]);
    hashing.stop();
  });

  test('without segments, only the whole', async () => {
    const hashing = hashImage(file, bytes.length, [], () => {
      throw new Error('no segment was asked for');
    });
    await expect(hashing.sha256).resolves.toBe(sha(bytes));
  });

  test('an image shorter than its size when read is refused, as is one that is missing', async () => {
    await expect(hashImage(file, bytes.length + 1, [], () => undefined).sha256).rejects.toThrow('the image changed size while it was being read');
    await expect(hashImage(path.join(dir, 'gone.sif'), 10, [], () => undefined).sha256).rejects.toThrow(/gone\.sif/);
  });

  test('stopped midway, it ends without an answer', async () => {
    const hashing = hashImage(file, bytes.length, [], () => undefined);
    hashing.stop();
    await expect(hashing.sha256).rejects.toThrow(/stopped before its end/);
  });
});

describe('SegmentVerifier.ends', () => {
  const closed = { isOpen: () => false } as unknown as SftpConnection;
  const ends = (size: number, segmentBytes: number) =>
    new SegmentVerifier(closed, '/x.partial', { size, segmentBytes, coverage: new Coverage(new RangeMap()) }).ends();

  test('whole segments up to the last 64 MiB, which are cut in quarters', () => {
    expect(ends(300 * MiB, 64 * MiB).map((e) => e / MiB)).toEqual([64, 128, 192, 236, 252, 268, 284, 300]);
  });

  test('a size that is not whole MiB ends on the size itself', () => {
    const got = ends(100 * MiB + 5, 64 * MiB);
    expect(got[got.length - 1]).toBe(100 * MiB + 5);
    expect(got.slice(0, -1).map((e) => e / MiB)).toEqual([36, 52, 68, 84, 100]);
  });
});
