// The stages as a workflow runs them: the bundled action with its inputs, for stages other than build.
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runBundledAction } from '../helpers/action.js';
import { requireTorchImage } from '../helpers/torch.js';
import { tempDir } from '../helpers/tools.js';

jest.setTimeout(300_000);
const work = tempDir('bi-pipeline-');
afterAll(() => work.cleanup());

describe('stage: smoke through the action', () => {
  test('runs the PyTorch payload in the image and sets smoke-json', () => {
    const image = requireTorchImage();
    const run = runBundledAction({ stage: 'smoke', image, launcher: 'direct', gpus: '0', baseline: 'none' }, { cwd: work.dir });
    expect(run.stdout).not.toMatch(/^\s+at /m);
    expect(run.status).toBe(0);
    const report = JSON.parse(run.outputs['smoke-json']);
    expect(report.candidate.torch).toMatch(/^2\./);
    expect(run.summary).toMatch(/CPU fp32 GEMM/);
  });

  test('an image that cannot run the payload fails the step with the reason and no stack trace', () => {
    const run = runBundledAction({ stage: 'smoke', image: path.resolve('test/fixtures/sif/busybox-gzip.sif'), launcher: 'direct', gpus: '0', baseline: 'none' }, { cwd: work.dir });
    expect(run.status).toBe(1);
    // The start-latency probe runs first and fails with apptainer's own reason.
    expect(run.stdout).toMatch(/::error::apptainer exec .*busybox-gzip.sif true failed.*executable file not found/);
    expect(run.stdout).not.toMatch(/^\s+at .*\.js:\d+/m);
  });

  test('a missing image is named as the input', () => {
    const run = runBundledAction({ stage: 'smoke', image: 'nowhere.sif' }, { cwd: work.dir });
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('::error::input image: file not found: nowhere.sif');
  });
});

describe('build-image table', () => {
  const cli = path.resolve('dist/cli.js');
  test('--check prints the diff, exits 1 and changes nothing; without it the file is edited', () => {
    const file = path.join(work.dir, 'images.rst');
    copyFileSync('test/fixtures/docs/preset-images.rst', file);
    const before = readFileSync(file, 'utf8');
    const args = ['table', '--file', file, '--key', 'PyTorch', '--value', '/lustre/share/img/pytorch-24.10-py3.sif'];
    const check = spawnSync('node', [cli, ...args, '--check'], { encoding: 'utf8' });
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/^-PyTorch +\/lustre\/share\/img\/pytorch-19\.10-py3\.simg/m);
    expect(check.stdout).toMatch(/^\+PyTorch +\/lustre\/share\/img\/pytorch-24\.10-py3\.sif/m);
    expect(readFileSync(file, 'utf8')).toBe(before);
    const edit = spawnSync('node', [cli, ...args], { encoding: 'utf8' });
    expect(edit.status).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^PyTorch +\/lustre\/share\/img\/pytorch-24\.10-py3\.sif$/m);
    const again = spawnSync('node', [cli, ...args, '--check'], { encoding: 'utf8' });
    expect(again.status).toBe(0);
  });

  test('a file without the table is a clear error', () => {
    const result = spawnSync('node', [cli, 'table', '--file', 'README.md', '--key', 'PyTorch', '--value', '/x.sif'], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/error: no table with columns 软件\/Software and 位置\/Location in README\.md/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
