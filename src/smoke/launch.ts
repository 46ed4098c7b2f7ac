// Command lines for the smoke test, as data: `apptainer exec` inside the image, `srun` around it, or an sbatch
// job script in the form the centre documents. Pure: the stage (smoke.ts) runs what these return.

import { shellQuote } from '../util/shell.js';

export type Launcher = 'direct' | 'srun' | 'sbatch' | 'pyxis';

/** How one image runs: apptainer here or under Slurm, or an enroot image (.sqsh) here (enroot) or under pyxis. */
export type Runner = 'direct' | 'srun' | 'sbatch' | 'enroot' | 'pyxis';

/** Whether a path names an enroot image (squashfs with enroot's /etc/rc) rather than a SIF. */
export function isSqsh(image: string): boolean {
  return /\.sqsh$/i.test(image);
}

/**
 * The runner for an image under a launcher: `direct` runs a SIF with apptainer and a .sqsh with enroot; `pyxis` runs
 * a .sqsh with `srun --container-image` and a SIF (a baseline, the other format) with srun and apptainer; `srun` and
 * `sbatch` run SIFs only. Returns a message for a pairing that cannot run.
 */
export function runnerFor(launcher: Launcher, image: string): Runner | { problem: string } {
  if (!isSqsh(image)) return launcher === 'pyxis' ? 'srun' : launcher;
  if (launcher === 'direct') return 'enroot';
  if (launcher === 'pyxis') return 'pyxis';
  return { problem: `launcher: ${launcher} runs SIF images with apptainer; ${image} is an enroot image (.sqsh): use launcher pyxis (srun --container-image) or direct (enroot)` };
}

export interface ContainerPlan {
  image: string;
  /** `SRC:DST:ro` each (the payload). */
  binds: string[];
  /** Names of variables set inside the container; their values travel in the launcher's environment, not argv. */
  envNames: string[];
  /** A writable container root (pyxis `--container-writable`, enroot `--rw`). */
  writable: boolean;
}

/** pyxis's srun options: `--container-image=IMG [--container-mounts=SRC:DST:ro,...] [--container-env=A,B] [--container-writable]`. */
export function pyxisArgs(plan: ContainerPlan): string[] {
  const args = [`--container-image=${plan.image}`];
  if (plan.binds.length > 0) args.push(`--container-mounts=${plan.binds.join(',')}`);
  if (plan.envNames.length > 0) args.push(`--container-env=${plan.envNames.join(',')}`);
  if (plan.writable) args.push('--container-writable');
  return args;
}

/** `enroot start [--rw] [--mount SRC:DST:none:x-create=file,bind,ro ...] [--env NAME ...] NAME ARGV...` */
export function enrootStartArgs(name: string, plan: Omit<ContainerPlan, 'image'>, argv: readonly string[]): string[] {
  const args = ['start'];
  if (plan.writable) args.push('--rw');
  for (const bind of plan.binds) {
    // enroot's --mount is an fstab line with ':' for blanks; the target is created (a file) when the image lacks it.
    const [src, dst, mode = 'rw'] = bind.split(':');
    args.push('--mount', `${src}:${dst}:none:x-create=file,bind,${mode}`);
  }
  for (const name of plan.envNames) args.push('--env', name);
  args.push(name, ...argv);
  return args;
}

/** Where the payload appears inside the container (bound read-only from the work directory). */
export const PAYLOAD_IN_CONTAINER = '/build-image-smoke.py';

export interface ExecPlan {
  /** `apptainer` or `singularity` (a path is fine). */
  builder: string;
  image: string;
  gpus: number;
  nvccli: boolean;
  /** `--userns`: root without every capability cannot exec otherwise. */
  userns: boolean;
  /**
   * `--pid`: a PID namespace, so that stopping apptainer ends everything inside (without it a shell's children
   * outlive a SIGTERM and hold the output pipe open). Slurm ends a job's processes itself.
   */
  pid?: boolean;
  /** `SRC[:DST[:OPTS]]` each. */
  binds: string[];
  /** Variables set inside the container (`--env K=V`). */
  env: Record<string, string>;
  /** The command inside the image. */
  argv: string[];
}

/** `exec [--nv|--nvccli] [--userns] [-B ...] [--env K=V ...] IMAGE ARGV...` (without the builder itself). */
export function execArgs(plan: ExecPlan): string[] {
  const args = ['exec'];
  if (plan.gpus > 0) args.push(plan.nvccli ? '--nvccli' : '--nv');
  if (plan.userns) args.push('--userns');
  if (plan.pid) args.push('--pid');
  for (const bind of plan.binds) args.push('-B', bind);
  for (const [key, value] of Object.entries(plan.env)) args.push('--env', `${key}=${value}`);
  args.push(plan.image, ...plan.argv);
  return args;
}

/** `exec [--userns] IMAGE true`: what container start latency is measured with. */
export function startLatencyArgs(plan: Pick<ExecPlan, 'image' | 'userns'>): string[] {
  return ['exec', ...(plan.userns ? ['--userns'] : []), plan.image, 'true'];
}

export interface PayloadPlan {
  preset: 'pytorch' | 'none';
  /** Custom shell command run inside the image, after the preset payload when there is one. */
  command?: string;
  python: string;
  /** Payload fails unless this many GPUs are visible (0: no requirement). */
  requireGpus: number;
}

/** The command inside the image: the payload, a custom command, or the payload followed by the command. */
export function payloadArgv(plan: PayloadPlan): string[] {
  const payload = [plan.python, PAYLOAD_IN_CONTAINER, ...(plan.requireGpus > 0 ? ['--require-gpus', String(plan.requireGpus)] : [])];
  const command = plan.command?.trim();
  if (plan.preset === 'none') {
    if (!command) throw new Error('preset `none` needs a smoke-command to run');
    return ['/bin/sh', '-c', command];
  }
  if (!command) return payload;
  return ['/bin/sh', '-c', `${payload.map(shellQuote).join(' ')} && ${command}`];
}

export interface SlurmResources {
  jobName: string;
  partition: string;
  gpus: number;
  cpusPerTask: number;
  mem?: string;
  /** `--time`, e.g. `00:15:00`. */
  timeLimit: string;
  account?: string;
  qos?: string;
}

function resourceOptions(r: SlurmResources): string[] {
  const out = [`--job-name=${r.jobName}`, `--partition=${r.partition}`, '--nodes=1', '--ntasks=1'];
  if (r.gpus > 0) out.push(`--gres=gpu:${r.gpus}`);
  out.push(`--cpus-per-task=${r.cpusPerTask}`);
  if (r.mem) out.push(`--mem=${r.mem}`);
  out.push(`--time=${r.timeLimit}`);
  if (r.account) out.push(`--account=${r.account}`);
  if (r.qos) out.push(`--qos=${r.qos}`);
  return out;
}

/** `srun -J NAME -p PART -N 1 -n 1 --gres=gpu:N --cpus-per-task=C [--mem] --time=T [--account] [--qos] [extra] CMD...` */
export function srunArgs(r: SlurmResources, extra: readonly string[], command: readonly string[]): string[] {
  const [jobName, partition, ...rest] = resourceOptions(r);
  // Short forms first, as the centre's documentation writes them; the rest spelled out.
  return [
    '-J', jobName.slice('--job-name='.length),
    '-p', partition.slice('--partition='.length),
    '-N', '1', '-n', '1',
    ...rest.filter((o) => o !== '--nodes=1' && o !== '--ntasks=1'),
    ...extra,
    ...command,
  ];
}

/**
 * A job script in the centre's documented form: `#SBATCH` lines, then the exec line. Output and error go to
 * `%j.out` / `%j.err` in the submission directory, which the stage reads while the job runs.
 */
export function jobScript(r: SlurmResources, command: readonly string[], preamble: readonly string[] = []): string {
  const lines = [
    '#!/bin/bash',
    `#SBATCH -J ${r.jobName}`,
    `#SBATCH -p ${r.partition}`,
    '#SBATCH -o %j.out',
    '#SBATCH -e %j.err',
    '#SBATCH -N 1',
    '#SBATCH --ntasks-per-node=1',
    `#SBATCH --cpus-per-task=${r.cpusPerTask}`,
  ];
  if (r.gpus > 0) lines.push(`#SBATCH --gres=gpu:${r.gpus}`);
  if (r.mem) lines.push(`#SBATCH --mem=${r.mem}`);
  lines.push(`#SBATCH --time=${r.timeLimit}`);
  if (r.account) lines.push(`#SBATCH --account=${r.account}`);
  if (r.qos) lines.push(`#SBATCH --qos=${r.qos}`);
  // The command's own exit status, recorded by the job: evidence that does not depend on the scheduler remembering.
  lines.push('', ...preamble, command.map(shellQuote).join(' '), 'status=$?', 'echo "$status" > "${SLURM_JOB_ID}.exit"', 'exit "$status"', '');
  return lines.join('\n');
}

/** `sbatch --parsable [extra] SCRIPT`: extra Slurm arguments go on the command line, where they override the script. */
export function sbatchArgs(extra: readonly string[], script: string): string[] {
  return ['--parsable', ...extra, script];
}

/** `sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`. */
export function parseSbatchOutput(stdout: string): string {
  const line = stdout.trim().split(/\r?\n/).pop() ?? '';
  const m = /^(\d+)(?:;\S+)?$/.exec(line.trim());
  if (!m) throw new Error(`sbatch --parsable printed no job id: ${JSON.stringify(stdout.trim().slice(0, 200))}`);
  return m[1];
}

export interface JobStatus {
  state: string;
  /** The batch script's exit code, and the signal that ended it (0 if none). */
  exitCode?: number;
  exitSignal?: number;
  reason?: string;
}

/** Parses `scontrol show job -o ID` (one line of KEY=VALUE). */
export function parseScontrolJob(text: string): JobStatus | undefined {
  const state = /\bJobState=(\S+)/.exec(text)?.[1];
  if (!state) return undefined;
  const exit = /\bExitCode=(\d+):(\d+)/.exec(text);
  const reason = /\bReason=(\S+)/.exec(text)?.[1];
  return {
    state,
    ...(exit ? { exitCode: Number(exit[1]), exitSignal: Number(exit[2]) } : {}),
    ...(reason && reason !== 'None' ? { reason } : {}),
  };
}

/** Parses `sacct -n -X -P -j ID -o State,ExitCode` (`COMPLETED|0:0`; `CANCELLED by 0|0:15`). */
export function parseSacct(text: string): JobStatus | undefined {
  const line = text.split(/\r?\n/).find((l) => l.includes('|'));
  if (!line) return undefined;
  const [stateField, exitField] = line.split('|');
  const exit = /^(\d+):(\d+)$/.exec(exitField?.trim() ?? '');
  return {
    state: stateField.trim().split(/\s+/)[0],
    ...(exit ? { exitCode: Number(exit[1]), exitSignal: Number(exit[2]) } : {}),
  };
}

const TERMINAL = new Set([
  'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'REVOKED',
]);

export function isTerminal(state: string): boolean {
  return TERMINAL.has(state);
}

