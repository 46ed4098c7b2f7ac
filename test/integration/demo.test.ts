// `npm run demo` is one of the two commands the README promises work on a fresh machine: run it whole.
import { expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';

test('npm run demo builds twice, runs the whole pipeline three times (the second skipped as unchanged) and exits 0', () => {
  const run = spawnSync('bash', ['scripts/demo.sh'], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  const out = run.stdout + run.stderr;
  expect({ status: run.status, tail: run.status === 0 ? '' : out.slice(-3000) }).toEqual({ status: 0, tail: '' });
  // The two builds' summaries, and the pi image runs.
  expect(out.match(/^build-image: build$/gm)?.length).toBe(4);
  // Three pipeline runs: the second finds the published image current and does nothing; the third (a new upstream)
  // compares against the image the first published.
  const second = out.slice(out.indexOf('== build-image all (run 2 of 3'), out.indexOf('== build-image all (run 3 of 3'));
  expect(second).toMatch(/^build-image: skipped, unchanged$/m);
  expect(second).not.toMatch(/^▸ Build with /m);
  expect(out).toMatch(/== build-image all \(run 3 of 3: a new upstream; the published image is now the baseline\)/);
  expect(out).toMatch(/^Passed: no GEMM or transfer figure fell more than 90 % below the baseline\.$/m);
  expect(out).toMatch(/^ {3}pytorch-latest\.sif -> pytorch-2\.6-cpu\.sif/m);
  expect(out).toMatch(/^== docs pull requests on SJTU-HPC\/docs\.hpc\.sjtu\.edu\.cn: 1$/m);
  expect(out).toMatch(/^ {3}\+ PyTorch +\/.*\/pytorch-2\.6-cpu\.sif$/m);
  expect(out).toContain("every request and response matched GitHub's OpenAPI description");
  // The demo's token never shows.
  expect(out).not.toContain('ghp_demoDEMOdemo');
}, 900_000);
