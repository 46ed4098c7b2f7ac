import { describe, expect, test } from '@jest/globals';
import { commandLine, shellQuote } from '../../src/util/shell.js';
import {
  execArgs,
  isTerminal,
  jobScript,
  parseSacct,
  parseSbatchOutput,
  parseScontrolJob,
  PAYLOAD_IN_CONTAINER,
  payloadArgv,
  sbatchArgs,
  srunArgs,
  startLatencyArgs,
  type SlurmResources, enrootStartArgs, pyxisArgs, runnerFor 
} from '../../src/smoke/launch.js';

const plan = {
  builder: 'apptainer',
  image: '/lustre/images/pytorch.sif',
  gpus: 2,
  nvccli: false,
  userns: false,
  binds: ['/work/p.py:/build-image-smoke.py:ro'],
  env: {},
  argv: ['python3', PAYLOAD_IN_CONTAINER],
};

const dgx2: SlurmResources = { jobName: 'build-image-smoke-1', partition: 'dgx2', gpus: 2, cpusPerTask: 12, timeLimit: '00:15:00' };

describe('apptainer exec lines', () => {
  test('a GPU run gets --nv, the payload bind and the image before the command', () => {
    expect(execArgs(plan)).toEqual(['exec', '--nv', '-B', '/work/p.py:/build-image-smoke.py:ro', '/lustre/images/pytorch.sif', 'python3', '/build-image-smoke.py']);
  });

  test('--nvccli replaces --nv; --userns and --env follow; no GPUs means neither', () => {
    expect(execArgs({ ...plan, nvccli: true, userns: true, env: { SMOKE_THREADS: '1' } })).toEqual([
      'exec', '--nvccli', '--userns', '-B', '/work/p.py:/build-image-smoke.py:ro', '--env', 'SMOKE_THREADS=1', '/lustre/images/pytorch.sif', 'python3', '/build-image-smoke.py',
    ]);
    expect(execArgs({ ...plan, gpus: 0, binds: [] })).toEqual(['exec', '/lustre/images/pytorch.sif', 'python3', '/build-image-smoke.py']);
  });

  test('--pid (direct launcher) comes after --userns', () => {
    expect(execArgs({ ...plan, userns: true, pid: true }).slice(0, 4)).toEqual(['exec', '--nv', '--userns', '--pid']);
  });

  test('start latency is measured with exec IMAGE true', () => {
    expect(startLatencyArgs({ image: 'a.sif', userns: true })).toEqual(['exec', '--userns', 'a.sif', 'true']);
    expect(startLatencyArgs({ image: 'a.sif', userns: false })).toEqual(['exec', 'a.sif', 'true']);
  });
});

describe('what runs inside the image', () => {
  test('the preset payload, told how many GPUs it must see', () => {
    expect(payloadArgv({ preset: 'pytorch', python: 'python3', requireGpus: 2 })).toEqual(['python3', PAYLOAD_IN_CONTAINER, '--require-gpus', '2']);
    expect(payloadArgv({ preset: 'pytorch', python: '/opt/torch/.venv/bin/python3', requireGpus: 0 })).toEqual(['/opt/torch/.venv/bin/python3', PAYLOAD_IN_CONTAINER]);
  });

  test('a custom command runs after the payload, or alone with preset none', () => {
    expect(payloadArgv({ preset: 'pytorch', python: 'python3', requireGpus: 0, command: 'nvidia-smi -L' })).toEqual([
      '/bin/sh', '-c', `python3 ${PAYLOAD_IN_CONTAINER} && nvidia-smi -L`,
    ]);
    expect(payloadArgv({ preset: 'none', python: 'python3', requireGpus: 1, command: 'true' })).toEqual(['/bin/sh', '-c', 'true']);
    expect(() => payloadArgv({ preset: 'none', python: 'python3', requireGpus: 0 })).toThrow(/smoke-command/);
  });
});

describe('srun', () => {
  test('the documented options, then the extra arguments, then the exec line', () => {
    expect(srunArgs({ ...dgx2, mem: '64G', account: 'acct', qos: 'normal' }, ['--exclusive'], ['apptainer', 'exec', 'x.sif'])).toEqual([
      '-J', 'build-image-smoke-1', '-p', 'dgx2', '-N', '1', '-n', '1', '--gres=gpu:2', '--cpus-per-task=12', '--mem=64G', '--time=00:15:00',
      '--account=acct', '--qos=normal', '--exclusive', 'apptainer', 'exec', 'x.sif',
    ]);
  });

  test('no GPUs asks for no gres', () => {
    expect(srunArgs({ ...dgx2, gpus: 0 }, [], ['true'])).not.toContain('--gres=gpu:0');
  });
});

describe('sbatch job script', () => {
  test("follows the centre's documented form", () => {
    const script = jobScript(dgx2, ['apptainer', 'exec', '--nv', '/lustre/my image.sif', 'python3', PAYLOAD_IN_CONTAINER]);
    expect(script).toBe(
      [
        '#!/bin/bash',
        '#SBATCH -J build-image-smoke-1',
        '#SBATCH -p dgx2',
        '#SBATCH -o %j.out',
        '#SBATCH -e %j.err',
        '#SBATCH -N 1',
        '#SBATCH --ntasks-per-node=1',
        '#SBATCH --cpus-per-task=12',
        '#SBATCH --gres=gpu:2',
        '#SBATCH --time=00:15:00',
        '',
        "apptainer exec --nv '/lustre/my image.sif' python3 /build-image-smoke.py",
        'status=$?',
        'echo "$status" > "${SLURM_JOB_ID}.exit"',
        'exit "$status"',
        '',
      ].join('\n'),
    );
  });

  test('memory, account and QOS become #SBATCH lines; extra arguments go on the sbatch command line', () => {
    const script = jobScript({ ...dgx2, mem: '32G', account: 'hpc', qos: 'debug' }, ['true']);
    expect(script).toContain('#SBATCH --mem=32G\n#SBATCH --time=00:15:00\n#SBATCH --account=hpc\n#SBATCH --qos=debug\n');
    expect(sbatchArgs(['--exclusive'], '/w/smoke.sbatch')).toEqual(['--parsable', '--exclusive', '/w/smoke.sbatch']);
  });

  test('the job id comes from --parsable output, with or without a cluster name', () => {
    expect(parseSbatchOutput('1234\n')).toBe('1234');
    expect(parseSbatchOutput('sbatch: warning: x\n987;siyuan\n')).toBe('987');
    expect(() => parseSbatchOutput('sbatch: error: Batch job submission failed')).toThrow(/no job id/);
  });
});

describe('following a job', () => {
  test('scontrol and sacct give its state and exit code', () => {
    expect(parseScontrolJob('JobId=5 JobName=x JobState=RUNNING Reason=None Dependency=(null) ExitCode=0:0')).toEqual({ state: 'RUNNING', exitCode: 0, exitSignal: 0 });
    expect(parseScontrolJob('JobId=6 JobState=PENDING Reason=Resources ExitCode=0:0')).toMatchObject({ state: 'PENDING', reason: 'Resources' });
    expect(parseScontrolJob('JobId=7 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0')).toMatchObject({ state: 'FAILED', exitCode: 3 });
    expect(parseScontrolJob('slurm_load_jobs error: Invalid job id specified')).toBeUndefined();
    expect(parseSacct('CANCELLED by 0|0:15\n')).toEqual({ state: 'CANCELLED', exitCode: 0, exitSignal: 15 });
    expect(parseSacct('')).toBeUndefined();
  });

  test('only finished states end the wait', () => {
    expect(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY'].every(isTerminal)).toBe(true);
    expect(['PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING'].some(isTerminal)).toBe(false);
  });
});

test('command lines are printed so they can be pasted into a shell', () => {
  expect(shellQuote('a b')).toBe("'a b'");
  expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  expect(shellQuote('')).toBe("''");
  expect(commandLine('srun', ['-p', 'dgx2', 'sh', '-c', 'echo $X'])).toBe("srun -p dgx2 sh -c 'echo $X'");
});

describe('enroot images (.sqsh)', () => {
  test('runnerFor: direct and pyxis run a .sqsh with enroot; srun and sbatch refuse it; pyxis runs a SIF with srun', () => {
    expect(runnerFor('direct', '/x/a.sqsh')).toBe('enroot');
    expect(runnerFor('pyxis', '/x/a.sqsh')).toBe('pyxis');
    expect(runnerFor('pyxis', '/x/a.sif')).toBe('srun');
    expect(runnerFor('direct', '/x/a.sif')).toBe('direct');
    expect(runnerFor('sbatch', '/x/a.sqsh')).toEqual({ problem: expect.stringMatching(/^launcher: sbatch runs SIF images with apptainer; \/x\/a\.sqsh is an enroot image/) });
  });

  test('pyxisArgs: image, mounts, variable names (values travel in the environment), writable', () => {
    expect(pyxisArgs({ image: '/i.sqsh', binds: ['/w/p.py:/p.py:ro', '/d:/d:ro'], envNames: ['A', 'B'], writable: true })).toEqual([
      '--container-image=/i.sqsh',
      '--container-mounts=/w/p.py:/p.py:ro,/d:/d:ro',
      '--container-env=A,B',
      '--container-writable',
    ]);
    expect(pyxisArgs({ image: '/i.sqsh', binds: [], envNames: [], writable: false })).toEqual(['--container-image=/i.sqsh']);
  });

  test('enrootStartArgs: fstab-style mounts that create their target, --env by name', () => {
    expect(enrootStartArgs('c1', { binds: ['/w/p.py:/p.py:ro'], envNames: ['A'], writable: true }, ['python3', '/p.py'])).toEqual([
      'start', '--rw', '--mount', '/w/p.py:/p.py:none:x-create=file,bind,ro', '--env', 'A', 'c1', 'python3', '/p.py',
    ]);
  });
});
