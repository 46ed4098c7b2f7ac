// The smoke stage: runs the payload inside the image (on this runner, under srun, or as an sbatch job that it
// follows to the end), does the same on the baseline image, compares the figures and reports them.
import { existsSync } from 'node:fs';
import { hold } from '../util/resources.js';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectBuilder, execNeedsUserns, readPrivileges } from '../build/builder.js';
import { renderMarkdown } from '../report/summary.js';
import { findExecutable } from '../util/process.js';
import { compareReports, describeRegression, type Comparison, type PayloadReport } from './compare.js';
import { execArgs, PAYLOAD_IN_CONTAINER, payloadArgv, pyxisArgs, runnerFor } from './launch.js';
import { runEnroot } from './enroot-run.js';
import { smokeJson, smokeSummary, type SmokeReportInput } from './report.js';
import { runDirect, startLatency } from './direct.js';
import { SmokeError, type Context } from './run-context.js';
import { runSbatch, runSrun, SLURM_HINT } from './slurm-run.js';

import type { SmokeOptions, SmokeResult } from './options.js';

export type { SmokeOptions, SmokeResult } from './options.js';

/** The payload shipped with the action: dist/assets/ in the bundle (chunks one level down), assets/ in the source tree. */
export function defaultPayloadPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, 'assets/smoke/pytorch_smoke.py'),
    path.join(here, '../assets/smoke/pytorch_smoke.py'),
    path.join(here, '../../assets/smoke/pytorch_smoke.py'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new SmokeError(`the smoke payload is missing (looked in ${candidates.join(', ')}); reinstall the action`);
  return found;
}

export { SmokeError } from './run-context.js';

export async function smokeTest(opts: SmokeOptions): Promise<SmokeResult> {
  const { reporter } = opts;
  if (opts.preset === 'none' && !opts.command?.trim()) {
    throw new SmokeError('preset `none` runs nothing: set smoke-command, or use preset `pytorch`');
  }
  const env = opts.processEnv ?? process.env;
  if (opts.launcher !== 'direct' && !opts.dryRun) {
    // Fail before spending time on anything else when the Slurm client commands are not here.
    const needed = opts.launcher === 'sbatch' ? ['sbatch', 'scontrol', 'scancel', 'squeue'] : ['srun', 'scancel', 'squeue'];
    for (const command of needed) {
      if (!(await findExecutable(command, env.PATH))) throw new SmokeError(`${command} was not found on PATH: ${SLURM_HINT}`);
    }
  }
  // A pairing that cannot run fails before anything starts, naming the input.
  for (const image of [opts.image, ...(opts.baseline ? [opts.baseline] : [])]) {
    const runner = runnerFor(opts.launcher, image);
    if (typeof runner !== 'string') throw new SmokeError(runner.problem);
  }
  const builder = await resolveBuilder(opts, env);
  const userns = execNeedsUserns(await readPrivileges());
  const ownWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? (opts.dryRun ? path.resolve('.build-image-smoke-DRYRUN') : await mkdtemp(path.join(await workDirBase(opts.launcher), '.build-image-smoke-')));
  const payloadHost = path.join(workDir, 'pytorch_smoke.py');
  const ctx: Context = { opts, builder, userns, workDir, payloadHost, env, signal: opts.signal };
  const unholdDir = ownWorkDir && !opts.dryRun ? hold({ kind: 'temp-dir', path: workDir }) : undefined;
  try {
    if (!opts.dryRun) {
      await mkdir(workDir, { recursive: true });
      if (opts.preset === 'pytorch') await copyFile(opts.payloadPath ?? defaultPayloadPath(), payloadHost);
    }
    const candidate = await reporter.group(`Smoke test: ${opts.image} (${opts.launcher})`, () => runImage(ctx, opts.image, opts.env ?? {}));
    let baseline: PayloadReport | undefined;
    if (opts.baseline) {
      const baselineImage = opts.baseline;
      baseline = await reporter.group(`Baseline: ${baselineImage} (${opts.launcher})`, () =>
        runImage(ctx, baselineImage, opts.baselineEnv ?? opts.env ?? {}),
      );
    }
    return await finish(opts, candidate, baseline);
  } finally {
    // Kept while a job that may still run could write there (the scheduler stopped answering, scancel did not take).
    if (ownWorkDir && !opts.dryRun && !ctx.keepWorkDir) await rm(workDir, { recursive: true, force: true });
    unholdDir?.();
  }
}

/**
 * Where the work directory goes: the current directory (on a cluster, a shared file system the job's node sees),
 * unless its path holds `:` or `,`, which apptainer's `-B SRC:DST` cannot carry; then a private directory with a
 * plain path: the temporary directory for the direct launcher, the home directory's cache for Slurm jobs.
 */
async function workDirBase(launcher: SmokeOptions['launcher']): Promise<string> {
  const cwd = process.cwd();
  if (!/[:,]/.test(cwd)) return cwd;
  const base = launcher === 'direct' ? os.tmpdir() : path.join(os.homedir(), '.cache', 'build-image');
  if (/[:,]/.test(base)) throw new SmokeError(`the working directory ${cwd} and ${base} both contain ":" or ",", which apptainer binds cannot carry; run from another directory`);
  await mkdir(base, { recursive: true });
  return base;
}

async function resolveBuilder(opts: SmokeOptions, env: NodeJS.ProcessEnv): Promise<string> {
  if (opts.dryRun) return opts.builder ?? 'apptainer';
  try {
    // On a Slurm runner the builder must exist on the compute node; the login node may lack it.
    if (opts.launcher !== 'direct') {
      if (opts.builder) return opts.builder;
      return (await findExecutable('singularity', env.PATH)) && !(await findExecutable('apptainer', env.PATH)) ? 'singularity' : 'apptainer';
    }
    return (await detectBuilder(opts.builder ?? 'auto', env.PATH)).command;
  } catch (error) {
    throw new SmokeError((error as Error).message);
  }
}

async function finish(opts: SmokeOptions, candidate: PayloadReport, baseline?: PayloadReport): Promise<SmokeResult> {
  const comparison: Comparison | undefined = baseline && !opts.dryRun ? compareReports(candidate, baseline, opts.maxRegression) : undefined;
  const input: SmokeReportInput = {
    image: opts.image,
    baselineImage: opts.baseline,
    launcher: opts.launcher,
    candidate,
    baseline,
    comparison,
    maxRegression: opts.maxRegression,
  };
  const result: SmokeResult = {
    candidate,
    baseline,
    ratios: comparison?.ratios ?? {},
    regressions: (comparison?.regressions ?? []).map((r) => describeRegression(r, opts.maxRegression)),
    passed: comparison?.passed ?? true,
    startLatencySeconds: candidate.start_latency_seconds ?? NaN,
    json: smokeJson(input),
    markdown: renderMarkdown(smokeSummary(input)),
  };
  // The summary goes out before a failure, so the figures that failed the gate are there to read.
  await opts.reporter.summary(smokeSummary(input));
  if (!result.passed) {
    throw new SmokeError(
      `${opts.image} is slower than the baseline ${opts.baseline}:\n  ${result.regressions.join('\n  ')}\n` +
        'Find the cause, or raise max-regression if the slowdown is expected.',
      result,
    );
  }
  return result;
}

/** One image: start latency, then the payload; returns its report. */
async function runImage(ctx: Context, given: string, containerEnv: Record<string, string>): Promise<PayloadReport> {
  const { opts } = ctx;
  // Slurm jobs start in the work directory: a relative path must not change meaning there. URIs stay as given.
  const image = given.includes('://') ? given : path.resolve(given);
  if (opts.launcher === 'direct' && !given.includes('://') && !existsSync(image)) {
    // A dry run prints what would run, often for a path that exists only on the cluster.
    if (opts.dryRun) opts.reporter.warning(`image not found here: ${image}; the commands below need it where they run`);
    else throw new SmokeError(`image not found: ${image}`);
  } else if (opts.dryRun && opts.launcher !== 'direct' && !given.includes('://') && !existsSync(image)) {
    opts.reporter.warning(`image not found on this runner: ${image}; the job below needs it on the cluster's shared file system`);
  }
  const requireGpus = opts.requireGpus ?? opts.gpus;
  const binds = [...(opts.preset === 'pytorch' ? [`${ctx.payloadHost}:${PAYLOAD_IN_CONTAINER}:ro`] : []), ...(opts.binds ?? [])];
  const inner = payloadArgv({ preset: opts.preset, command: opts.command, python: opts.python ?? 'python3', requireGpus });
  const runner = runnerFor(opts.launcher, image);
  if (typeof runner !== 'string') throw new SmokeError(runner.problem);
  if (runner === 'enroot' || runner === 'pyxis') {
    // An enroot image: the same payload and binds; the variables' values travel in the environment, named in argv.
    const plan = { image, binds, envNames: Object.keys(containerEnv), writable: opts.writable ?? false };
    if (runner === 'enroot') return runEnroot(ctx, plan, inner, containerEnv);
    return runSrun(ctx, [...pyxisArgs(plan), ...inner], containerEnv);
  }
  const exec = [ctx.builder, ...execArgs({ builder: ctx.builder, image, gpus: opts.gpus, nvccli: opts.nvccli, userns: ctx.userns, pid: runner === 'direct', binds, env: containerEnv, argv: inner })];
  const latency = await startLatency(ctx, image);
  const report = runner === 'direct' ? await runDirect(ctx, exec) : runner === 'srun' ? await runSrun(ctx, exec) : await runSbatch(ctx, exec);
  if (latency !== undefined) report.start_latency_seconds = latency;
  return report;
}

