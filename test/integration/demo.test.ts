// `npm run demo` is one of the two commands the README promises work on a fresh machine: run it whole.
import { expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';

test('npm run demo builds twice, runs the whole pipeline three times as a nightly (the second skipped, the third on a new tag) and exits 0', () => {
  const run = spawnSync('bash', ['scripts/demo.sh'], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  const out = run.stdout + run.stderr;
  expect({ status: run.status, tail: run.status === 0 ? '' : out.slice(-3000) }).toEqual({ status: 0, tail: '' });
  // The two builds' summaries, and the pi image runs.
  expect(out.match(/^build-image: build$/gm)?.length).toBe(4);
  // Three pipeline runs: the first publishes the newest tag; the second finds the published image current and does
  // nothing; the third picks the tag pushed since and compares its image against the one the first published.
  const first = out.slice(out.indexOf('== build-image all (run 1 of 3'), out.indexOf('== build-image all (run 2 of 3'));
  const second = out.slice(out.indexOf('== build-image all (run 2 of 3'), out.indexOf('== build-image all (run 3 of 3'));
  const third = out.slice(out.indexOf('== build-image all (run 3 of 3'));
  expect(first).toMatch(/^Source tag +24\.10-cpu: the newest of 1 tag/m);
  expect(second).toMatch(/^build-image: skipped, unchanged$/m);
  expect(second).not.toMatch(/^▸ Build with /m);
  expect(third).toMatch(/^Source tag +24\.11-cpu: the newest of 2 tag/m);
  // The .sqsh ran under pyxis, on the local Slurm, in both building runs (the log lines are on stderr).
  expect(out.match(/^ *\$ srun .*--container-image=\S+\.sqsh /gm)?.length).toBe(2);
  expect(out).toMatch(/^Passed: no GEMM or transfer figure fell more than 90 % below the baseline\.$/m);
  expect(out).toMatch(/^ {3}pytorch-latest\.sif -> pytorch-24\.11-cpu\.sif/m);
  expect(out).toMatch(/^ {3}pytorch-latest\.sqsh -> pytorch-24\.11-cpu\.sqsh/m);
  expect(out).toMatch(/^== docs pull requests on SJTU-HPC\/docs\.hpc\.sjtu\.edu\.cn: 1$/m);
  // The chrooted sshd: the row names the image as the cluster sees it.
  expect(out).toMatch(/^ {3}\+ PyTorch +\/lustre\/share\/img\/pytorch-24\.11-cpu\.sif$/m);
  expect(out).toContain("every request and response matched GitHub's OpenAPI description");
  // The demo's token never shows.
  expect(out).not.toContain('ghp_demoDEMOdemo');
}, 900_000);
