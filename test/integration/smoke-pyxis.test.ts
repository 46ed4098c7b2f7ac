// Smoke tests of an enroot image (.sqsh): `launcher: pyxis` (srun --container-image on the test Slurm with pyxis)
// runs the PyTorch payload in the real PyTorch CPU image converted from its SIF, against the SIF as the baseline;
// `launcher: direct` runs a .sqsh with the real enroot and removes its container; SIF-only launchers refuse one.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { convertSifToSqsh } from '../../src/image/sqsh.js';
import { renderText } from '../../src/report/summary.js';
import { smokeTest, SmokeError, type SmokeOptions } from '../../src/smoke/smoke.js';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { recordingReporter, requireTorchImage } from '../helpers/torch.js';
import { requireTools, tempDir } from '../helpers/tools.js';

let slurm: Slurm;
let sif: string;
let sqsh: string;
const work = tempDir('bi-smoke-pyxis-');

beforeAll(async () => {
  requireTools('enroot', 'srun');
  sif = requireTorchImage();
  slurm = await startSlurm({ pyxis: true });
  sqsh = path.join(work.dir, 'torch-cpu.sqsh');
  await convertSifToSqsh({ sif, output: sqsh, tmpDir: work.dir });
}, 600_000);

afterAll(() => slurm?.stop().finally(work.cleanup), 60_000);

let n = 0;
function options(extra: Partial<SmokeOptions> = {}): SmokeOptions {
  // Two "GPUs" that are device nodes for Slurm's bookkeeping: CUDA cannot see them, so none are required.
  const slurmJob = { partition: 'dgx2', gpus: 2, requireGpus: 0, cpusPerTask: 2, timeLimit: '00:05:00', slurmArgs: [] };
  const run = { timeoutMs: 300_000, maxRegression: 0.99, nvccli: false, dryRun: false, latencyRuns: 1 };
  const image = { image: sqsh, launcher: 'pyxis' as const, preset: 'pytorch' as const };
  return { ...image, ...slurmJob, ...run, reporter: recordingReporter(), processEnv: slurm.env, workDir: path.join(work.dir, `run-${++n}`), ...extra };
}

function enrootList(): string {
  return spawnSync('enroot', ['list'], { env: slurm.env, encoding: 'utf8' }).stdout;
}

describe('launcher: pyxis', () => {
  test('runs the PyTorch payload in the .sqsh under srun --container-image and compares it with the SIF baseline in the summary', async () => {
    const reporter = recordingReporter();
    const result = await smokeTest(options({ reporter, baseline: sif, env: { OMP_NUM_THREADS: '1' } }));
    expect(result.candidate).toMatchObject({ ok: true, cuda_visible_devices: '0,1', threads: 1 });
    expect(result.candidate.torch).toMatch(/^2\./);
    expect(result.candidate.slurm_job_id).toMatch(/^\d+$/);
    expect(result.baseline!.torch).toBe(result.candidate.torch);
    expect(result.ratios.cpu_gemm_fp32_gflops).toBeGreaterThan(0);
    expect(reporter.lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^\\$ srun -J build-image-smoke-\\w+ -p dgx2 -N 1 -n 1 --gres=gpu:2 --cpus-per-task=2 --time=00:05:00 --container-image=${sqsh} --container-mounts=\\S+/pytorch_smoke.py:/build-image-smoke.py:ro --container-env=OMP_NUM_THREADS python3 /build-image-smoke.py$`),
      ),
    );
    // The baseline SIF ran the way srun runs a SIF: apptainer inside the job.
    expect(reporter.lines).toContainEqual(expect.stringMatching(/^\$ srun -J .* apptainer exec --nv .*torch-cpu\.sif python3/));
    const summary = reporter.summaries.map(renderText).join('\n');
    expect(summary).toMatch(/CPU fp32 GEMM/);
    expect(summary).toContain('torch-cpu.sqsh');
    expect(summary).toContain('torch-cpu.sif');
    expect(enrootList()).toBe('');
  }, 600_000);

  test('--dry-run prints the exact srun line and runs nothing', async () => {
    const reporter = recordingReporter();
    await smokeTest(options({ reporter, dryRun: true, preset: 'none', command: 'echo hi', image: '/cluster/only/new.sqsh' }));
    expect(reporter.lines).toContainEqual(
      expect.stringMatching(/^\[dry-run\] srun -J build-image-smoke-\w+ -p dgx2 -N 1 -n 1 --gres=gpu:2 --cpus-per-task=2 --time=00:05:00 --container-image=\/cluster\/only\/new\.sqsh \/bin\/sh -c 'echo hi'$/),
    );
  });
});

// A small image keeps these cheap: enroot create unpacks the whole file.
describe('launcher: direct with a .sqsh', () => {
  let small: string;
  beforeAll(async () => {
    small = path.join(work.dir, 'busybox.sqsh');
    await convertSifToSqsh({ sif: path.resolve('test/fixtures/sif/busybox-gzip.sif'), output: small });
  });

  test('enroot create + start runs the command with the image environment, and the container is removed', async () => {
    const reporter = recordingReporter();
    const result = await smokeTest(options({ reporter, image: small, launcher: 'direct', gpus: 0, preset: 'none', command: 'echo "FOO=$FOO WHO=$WHO"', env: { WHO: 'smoke' } }));
    expect(result.candidate.ok).toBe(true);
    expect(reporter.lines).toContainEqual('FOO=bar WHO=smoke');
    expect(reporter.lines).toContainEqual(expect.stringMatching(/^\$ enroot start --env WHO build-image-smoke-\d+-\w+ \/bin\/sh -c /));
    expect(enrootList()).toBe('');
  }, 300_000);

  test('a failing command still removes the container', async () => {
    const error = await smokeTest(options({ image: small, launcher: 'direct', gpus: 0, preset: 'none', command: 'echo boom; exit 3' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SmokeError);
    expect((error as Error).message).toMatch(/smoke test in .*busybox\.sqsh \(enroot\) failed \(exit 3\); output:\n\s+boom/);
    expect(enrootList()).toBe('');
  }, 300_000);

  test('--dry-run prints create, start and remove', async () => {
    const reporter = recordingReporter();
    await smokeTest(options({ reporter, image: small, launcher: 'direct', dryRun: true, gpus: 0, preset: 'none', command: 'true' }));
    const lines = reporter.lines.filter((l) => l.startsWith('[dry-run] enroot'));
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^\\[dry-run\\] enroot create --name build-image-smoke-\\d+-\\w+ ${small}$`)),
      expect.stringMatching(/^\[dry-run\] enroot start build-image-smoke-\d+-\w+ \/bin\/sh -c true$/),
      expect.stringMatching(/^\[dry-run\] enroot remove -f build-image-smoke-\d+-\w+$/),
    ]);
  });
});

test.each(['srun', 'sbatch'] as const)('a .sqsh given to launcher %s is one clear error, and no job runs', async (launcher) => {
  const reporter = recordingReporter();
  const error = await smokeTest(options({ reporter, launcher })).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SmokeError);
  expect((error as Error).message).toBe(`launcher: ${launcher} runs SIF images with apptainer; ${sqsh} is an enroot image (.sqsh): use launcher pyxis (srun --container-image) or direct (enroot)`);
  expect(reporter.lines.filter((l) => l.startsWith('$'))).toEqual([]);
});
