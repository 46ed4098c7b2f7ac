// srun and sbatch launchers against a real single-node Slurm (slurmctld, slurmd, munged) with a dgx2 partition
// whose node has two GPU gres, running the payload in the real PyTorch CPU image.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { smokeTest, SmokeError, type SmokeOptions } from '../../src/smoke/smoke.js';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { recordingReporter, requireTorchImage } from '../helpers/torch.js';
import { tempDir } from '../helpers/tools.js';

let slurm: Slurm;
let image: string;
// Job files go here: on a cluster, a directory the compute nodes share.
const work = tempDir('bi-smoke-slurm-');

beforeAll(async () => {
  image = requireTorchImage();
  slurm = await startSlurm();
}, 120_000);

afterAll(async () => {
  await slurm?.stop();
  work.cleanup();
}, 60_000);

let n = 0;
function options(extra: Partial<SmokeOptions> = {}): SmokeOptions {
  return {
    image,
    launcher: 'srun',
    preset: 'pytorch',
    partition: 'dgx2',
    gpus: 2,
    // The "GPUs" are device nodes for Slurm's bookkeeping; CUDA cannot see them, so the payload must not insist.
    requireGpus: 0,
    cpusPerTask: 2,
    timeLimit: '00:05:00',
    slurmArgs: [],
    timeoutMs: 180_000,
    maxRegression: 0.1,
    nvccli: false,
    dryRun: false,
    reporter: recordingReporter(),
    processEnv: slurm.env,
    workDir: path.join(work.dir, `run-${++n}`),
    pollMs: 300,
    latencyRuns: 1,
    ...extra,
  };
}

async function failure(run: Promise<unknown>): Promise<SmokeError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SmokeError);
  return error as SmokeError;
}

describe.each(['srun', 'sbatch'] as const)('%s launcher', (launcher) => {
  test('runs the payload on dgx2 with two GPUs allocated', async () => {
    const reporter = recordingReporter();
    const result = await smokeTest(options({ launcher, reporter }));
    expect(result.candidate.ok).toBe(true);
    expect(result.candidate.torch).toMatch(/^2\./);
    expect(result.candidate.cuda_visible_devices).toBe('0,1');
    expect(result.candidate.slurm_job_id).toMatch(/^\d+$/);
    expect(result.candidate.metrics!.cpu_gemm_fp32_gflops).toBeGreaterThan(0);
    expect(result.markdown).toContain('| CUDA_VISIBLE_DEVICES | `0,1` |');
    if (launcher === 'srun') {
      expect(reporter.lines).toContainEqual(expect.stringMatching(/^\$ srun -J build-image-smoke-\w+ -p dgx2 -N 1 -n 1 --gres=gpu:2 --cpus-per-task=2 --time=00:05:00 apptainer exec --nv /));
    } else {
      expect(reporter.lines).toContainEqual(expect.stringContaining('#SBATCH -p dgx2\n#SBATCH -o %j.out\n#SBATCH -e %j.err\n#SBATCH -N 1'));
      expect(reporter.lines).toContainEqual(expect.stringMatching(/^submitted job \d+ /));
      // The job's output was streamed into the log as the job wrote it.
      expect(reporter.lines).toContainEqual(expect.stringMatching(/^\{"smoke":"build-image\/pytorch-smoke"/));
      expect(reporter.lines).toContainEqual(expect.stringMatching(/^job \d+: COMPLETED$/));
    }
    expect(slurm.queue()).toEqual([]);
  }, 300_000);

  test('a job that outlives smoke-timeout is cancelled and gone from squeue', async () => {
    const started = Date.now();
    const error = await failure(smokeTest(options({ launcher, preset: 'none', command: 'sleep 600', timeoutMs: 8000 })));
    expect(error.message).toMatch(/timed out after 8 s \(smoke-timeout\), queueing included; cancelled it/);
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(slurm.queue()).toEqual([]);
  }, 180_000);

  test('a failing command fails the stage with the job\'s stderr', async () => {
    const error = await failure(smokeTest(options({ launcher, preset: 'none', command: 'echo "CUDA error: no kernel image" >&2; exit 3' })));
    expect(error.message).toMatch(/failed \(exit 3\)/);
    expect(error.message).toContain('CUDA error: no kernel image');
    expect(slurm.queue()).toEqual([]);
  }, 180_000);

  test('cancelling the workflow cancels the job', async () => {
    const controller = new AbortController();
    const reporter = recordingReporter();
    const run = smokeTest(options({ launcher, reporter, preset: 'none', command: 'echo started; sleep 600', signal: controller.signal }));
    const until = Date.now() + 60_000;
    while (!reporter.lines.includes('started') && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(slurm.queue()).toHaveLength(1);
    controller.abort();
    const error = await failure(run);
    expect(error.message).toMatch(/smoke test cancelled; cancelled job/);
    expect(slurm.queue()).toEqual([]);
  }, 180_000);

  test(`a missing ${launcher} is a clear error`, async () => {
    // PATH with the builder but without Slurm's commands.
    const bin = path.join(work.dir, `bin-${launcher}`);
    mkdirSync(bin);
    symlinkSync('/usr/local/bin/apptainer', path.join(bin, 'apptainer'));
    const error = await failure(smokeTest(options({ launcher, processEnv: { ...slurm.env, PATH: bin } })));
    expect(error.message).toBe(`${launcher} was not found on PATH: launcher srun and sbatch need Slurm's client commands on this runner (or use launcher: direct)`);
  });
});

describe('no evidence, no pass', () => {
  /** A stand-in payload that prints what it is given, run by the image's own python3. */
  function fakePayload(output: string): string {
    const file = path.join(work.dir, `payload-${++n}.py`);
    writeFileSync(file, `import sys\nsys.stdout.write(${JSON.stringify(output)})\n`);
    return file;
  }

  test('job output sent elsewhere (--output=/dev/null in slurm-args): the run fails for want of a report', async () => {
    const error = await failure(smokeTest(options({ launcher: 'sbatch', slurmArgs: ['--output=/dev/null'] })));
    expect(error.message).toMatch(/^job \d+ \(COMPLETED\) exited 0 but printed no report \(no line with "build-image\/pytorch-smoke"\): .*output went elsewhere/);
    expect(slurm.queue()).toEqual([]);
  }, 180_000);

  test.each([
    ['"ok":"false" (a string)', '{"smoke":"build-image/pytorch-smoke","ok":"false"}\n', /the payload's report is malformed: the report's "ok" is "false", not true or false/],
    ['a report that is not JSON', '{"smoke":"build-image/pytorch-smoke", broken\n', /the payload's report is malformed: the report line is not valid JSON/],
    ['a metric that is not a number', '{"smoke":"build-image/pytorch-smoke","ok":true,"metrics":{"h2d_gbps":"fast"}}\n', /the report's metric "h2d_gbps" is "fast", not a number/],
  ])('%s fails the run', async (_what, output, message) => {
    const error = await failure(smokeTest(options({ launcher: 'srun', payloadPath: fakePayload(output) })));
    expect(error.message).toMatch(message);
  }, 180_000);

  test('a last line without a newline reaches the log and the error; a line over the limit is cut and marked and the report after it is still found', async () => {
    const command = 'printf "first\\nthe reason, unterminated" >&2; exit 4';
    const reporter = recordingReporter();
    const direct = await failure(smokeTest(options({ launcher: 'direct', preset: 'none', command, reporter })));
    expect(direct.message).toMatch(/failed \(exit 4\); output:\n/);
    expect(direct.message.split('\n').pop()!.trim()).toBe('the reason, unterminated');
    expect(reporter.lines).toContain('the reason, unterminated');
    // srun prints its own error straight after the unterminated line; the reason still reaches the error.
    const viaSrun = await failure(smokeTest(options({ launcher: 'srun', preset: 'none', command })));
    expect(viaSrun.message).toContain('the reason, unterminated');
    const long = 'x'.repeat(1024 * 1024 + 10);
    const report = '{"smoke":"build-image/pytorch-smoke","ok":true,"metrics":{"h2d_gbps":1}}';
    const passing = await smokeTest(options({ launcher: 'sbatch', payloadPath: fakePayload(`${long}\n${report}`) }));
    expect(passing.candidate.metrics).toEqual({ h2d_gbps: 1 });
  }, 180_000);

  test('a job script from values with spaces, quotes, $, backticks, ":" and "," runs and does what it says', async () => {
    const dir = path.join(work.dir, 'odd dir, with: "quotes" $HOME `x`');
    mkdirSync(dir, { recursive: true });
    const reporter = recordingReporter();
    const command = `printf '%s|' "a b" '$HOME' '\`echo no\`' "it's" 'c:d,e'; printf '\\n'; pwd`;
    await smokeTest(options({ launcher: 'sbatch', preset: 'none', command, reporter, workDir: path.join(dir, 'job') }));
    expect(reporter.lines).toContain("a b|$HOME|`echo no`|it's|c:d,e|");
    expect(reporter.lines).toContain(path.join(dir, 'job'));
  }, 180_000);

  test('a working directory with ":" and "," still binds the payload (a private plain directory is used)', async () => {
    const dir = path.join(work.dir, 'colon:comma,dir');
    mkdirSync(dir, { recursive: true });
    const before = process.cwd();
    process.chdir(dir);
    try {
      const result = await smokeTest(options({ launcher: 'srun', workDir: undefined, payloadPath: fakePayload('{"smoke":"build-image/pytorch-smoke","ok":true}\n') }));
      expect(result.candidate.ok).toBe(true);
    } finally {
      process.chdir(before);
    }
  }, 180_000);

  // Last: it stops and restarts the controller.
  test('slurmctld stopped while the job runs: the run fails naming the job, says it may still run, and keeps its work directory', async () => {
    const reporter = recordingReporter();
    const workDir = path.join(work.dir, 'outage');
    const run = smokeTest(options({ launcher: 'sbatch', preset: 'none', command: 'echo started; sleep 60', reporter, workDir, schedulerRetries: 2 }));
    const until = Date.now() + 60_000;
    while (!reporter.lines.includes('started') && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    await slurm.stopController();
    try {
      const error = await failure(run);
      expect(error.message).toMatch(/^Slurm stopped answering about job (\d+) \(scontrol: .*\); the job may still be running: check `squeue -j \1`/);
      expect(error.message).toContain(`Its work directory ${workDir} is kept for it`);
      expect(existsSync(workDir)).toBe(true);
      expect(reporter.lines).toContainEqual(expect.stringMatching(/^warning: Slurm did not answer about job \d+ .*asking again in/));
    } finally {
      await slurm.startController();
      spawnSync('scancel', ['--full', '-u', 'root'], { env: slurm.env });
      // Later tests expect an empty queue: wait until the job the outage left is gone.
      const gone = Date.now() + 60_000;
      while (slurm.queue().length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 500));
      expect(slurm.queue()).toEqual([]);
    }
  }, 240_000);
});

test('sbatch dry run prints the job script and the submission, and submits nothing', async () => {
  const reporter = recordingReporter();
  await smokeTest(options({ launcher: 'sbatch', dryRun: true, reporter, slurmArgs: ['--exclusive'], mem: '32G' }));
  const script = reporter.lines.find((l) => l.startsWith('[dry-run] job script'))!;
  expect(script).toContain('#!/bin/bash\n#SBATCH -J build-image-smoke-');
  expect(script).toContain('#SBATCH --gres=gpu:2\n#SBATCH --mem=32G\n#SBATCH --time=00:05:00\n\napptainer exec --nv ');
  expect(reporter.lines).toContainEqual(expect.stringMatching(/^\[dry-run\] sbatch --parsable --exclusive \S+\/smoke\.sbatch$/));
  expect(slurm.queue()).toEqual([]);
});
