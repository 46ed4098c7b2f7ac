// The smoke stage: runs the payload inside the image (on this runner, under srun, or as an sbatch job that it
// follows to the end), does the same on the baseline image, compares the figures and reports them.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { LineSplitter } from '../util/lines.js';
import { hold } from '../util/resources.js';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectBuilder, execNeedsUserns, readPrivileges } from '../build/builder.js';
import type { Reporter } from '../report/reporter.js';
import { renderMarkdown } from '../report/summary.js';
import { CommandNotFoundError, findExecutable, runProcess, type RunResult } from '../util/process.js';
import { commandLine } from '../util/shell.js';
import { compareReports, describeRegression, PAYLOAD_MARKER, readPayloadReport, type Comparison, type PayloadReport } from './compare.js';
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
  type JobStatus,
  type Launcher,
  type SlurmResources,
} from './launch.js';
import { smokeJson, smokeSummary, type SmokeReportInput } from './report.js';
import { UserError } from '../user-error.js';
import { sleep } from '../util/sleep.js';

/** The Slurm resources (partition, gpus, cpus, mem, time, account, qos) are also what the direct launcher reads. */
export interface SmokeOptions extends Omit<SlurmResources, 'jobName'> {
  image: string;
  launcher: Launcher;
  preset: 'pytorch' | 'none';
  /** Shell command run inside the image (after the preset payload when there is one). */
  command?: string;
  slurmArgs: string[];
  /** Longest the whole test may take per image, queueing included; the job is cancelled after it. */
  timeoutMs: number;
  /** Image to compare against; undefined: no comparison. */
  baseline?: string;
  /** Largest allowed slowdown of GEMM and transfer figures, as a fraction (0.10). */
  maxRegression: number;
  nvccli: boolean;
  dryRun: boolean;
  builder?: 'apptainer' | 'singularity';
  binds?: string[];
  reporter: Reporter;
  signal?: AbortSignal;
  /** Fail unless this many GPUs are visible to the payload. Default: `gpus`. */
  requireGpus?: number;
  /** Python inside the image. Default `python3`. */
  python?: string;
  /** Variables set inside the container for the new image's run, and for the baseline's (default: the same). */
  env?: Record<string, string>;
  baselineEnv?: Record<string, string>;
  /**
   * Where the payload copy, the job script and the job's output go. For Slurm it must be on a file system the
   * compute nodes share. Default: a fresh `.build-image-smoke-*` directory in the current directory, removed after.
   */
  workDir?: string;
  /** The payload to run; default: the one shipped with the action. */
  payloadPath?: string;
  /** Status queries the scheduler may leave unanswered in a row (with doubling waits) before the run fails. Default 5. */
  schedulerRetries?: number;
  /** How often an sbatch job is polled, in ms. Default 2000. */
  pollMs?: number;
  /** How many `exec IMAGE true` runs the start latency is the median of. Default 3. */
  latencyRuns?: number;
  /** Environment for the child processes (PATH to find srun, the builder). Default: this process's. */
  processEnv?: NodeJS.ProcessEnv;
}

export interface SmokeResult {
  candidate: PayloadReport;
  baseline?: PayloadReport;
  ratios: Record<string, number>;
  regressions: string[];
  passed: boolean;
  startLatencySeconds: number;
  /** The `smoke-json` output. */
  json: string;
  /** Summary table and mermaid chart, for the job summary and the docs PR body. */
  markdown: string;
}

/** An expected failure: the message says what failed and, where it can, why. */
export class SmokeError extends UserError {
  constructor(
    message: string,
    /** Present when the runs finished but the gate failed: what was measured. */
    readonly result?: SmokeResult,
  ) {
    super(message);
    this.name = 'SmokeError';
  }
}

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

interface Context {
  opts: SmokeOptions;
  builder: string;
  userns: boolean;
  workDir: string;
  payloadHost: string;
  env: NodeJS.ProcessEnv;
  /** Fires on the caller's abort. */
  signal?: AbortSignal;
  /** Set when a job may still be running: its work directory must outlive this run. */
  keepWorkDir?: boolean;
}

export async function smokeTest(opts: SmokeOptions): Promise<SmokeResult> {
  const { reporter } = opts;
  if (opts.preset === 'none' && !opts.command?.trim()) {
    throw new SmokeError('preset `none` runs nothing: set smoke-command, or use preset `pytorch`');
  }
  const env = opts.processEnv ?? process.env;
  if (opts.launcher !== 'direct' && !opts.dryRun) {
    // Fail before spending time on anything else when the Slurm client commands are not here.
    const needed = opts.launcher === 'srun' ? ['srun', 'scancel', 'squeue'] : ['sbatch', 'scontrol', 'scancel', 'squeue'];
    for (const command of needed) {
      if (!(await findExecutable(command, env.PATH))) throw new SmokeError(`${command} was not found on PATH: ${SLURM_HINT}`);
    }
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
  const exec = [ctx.builder, ...execArgs({ builder: ctx.builder, image, gpus: opts.gpus, nvccli: opts.nvccli, userns: ctx.userns, pid: opts.launcher === 'direct', binds, env: containerEnv, argv: inner })];
  const latency = await startLatency(ctx, image);
  let report: PayloadReport;
  switch (opts.launcher) {
    case 'direct':
      report = await runDirect(ctx, exec);
      break;
    case 'srun':
      report = await runSrun(ctx, exec);
      break;
    case 'sbatch':
      report = await runSbatch(ctx, exec);
      break;
  }
  if (latency !== undefined) report.start_latency_seconds = latency;
  return report;
}

/** Median of a few `exec IMAGE true` on this runner. */
async function startLatency(ctx: Context, image: string): Promise<number | undefined> {
  const args = startLatencyArgs({ image, userns: ctx.userns });
  if (ctx.opts.dryRun) {
    ctx.opts.reporter.info(`[dry-run] start latency: ${commandLine(ctx.builder, args)}`);
    return undefined;
  }
  if (ctx.opts.launcher !== 'direct' && !(await findExecutable(ctx.builder, ctx.env.PATH))) {
    // A login node without the builder: the job still runs it on the compute node.
    ctx.opts.reporter.info(`container start latency not measured: ${ctx.builder} is not on this runner's PATH`);
    return undefined;
  }
  const times: number[] = [];
  for (let i = 0; i < (ctx.opts.latencyRuns ?? 3); i++) {
    const start = process.hrtime.bigint();
    if (ctx.signal?.aborted) throw new SmokeError('smoke test cancelled while measuring the container start latency');
    const run = await runProcess(ctx.builder, args, { env: ctx.env, signal: ctx.signal }).catch(notFound(ctx.builder));
    // Killed by our own cancellation: say so, not that the command failed.
    if (ctx.signal?.aborted) throw new SmokeError('smoke test cancelled while measuring the container start latency');
    if (run.code !== 0) {
      throw new SmokeError(`${commandLine(ctx.builder, args)} failed (exit ${run.code}): ${run.tail.slice(-5).join('\n')}`);
    }
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  ctx.opts.reporter.info(`container start latency (median of ${times.length}): ${median.toFixed(3)} s`);
  return median;
}

function notFound(command: string, hint = '') {
  return (error: unknown): never => {
    if (error instanceof CommandNotFoundError) {
      throw new SmokeError(`${command} was not found on PATH${hint ? `: ${hint}` : ''}`);
    }
    throw error;
  };
}

/** An abort signal that fires on the caller's abort or after the timeout; says which. */
function deadline(ctx: Context): { signal: AbortSignal; why: () => 'timeout' | 'aborted' | undefined; clear: () => void } {
  const controller = new AbortController();
  let why: 'timeout' | 'aborted' | undefined;
  const timer = setTimeout(() => {
    why = 'timeout';
    controller.abort();
  }, ctx.opts.timeoutMs);
  const onAbort = (): void => {
    why ??= 'aborted';
    controller.abort();
  };
  if (ctx.signal?.aborted) onAbort();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    why: () => why,
    clear: () => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
    },
  };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Turns a finished run into a report, or a SmokeError that says what was missing. No evidence, no pass: with the
 * PyTorch payload the run passes only with its parsed, schema-valid report saying `"ok": true`; with `preset: none`
 * only with a zero exit status.
 */
function payloadResult(ctx: Context, what: string, run: Pick<RunResult, 'code' | 'stdout' | 'tail'>, errTail: string[] = run.tail): PayloadReport {
  const { report, problem } = readPayloadReport(run.stdout);
  if (run.code !== 0 || report?.ok === false) {
    const reason = report?.error ? `the payload says: ${report.error}` : `output:\n    ${errTail.slice(-15).join('\n    ')}`;
    throw new SmokeError(`${what} failed (exit ${run.code}); ${reason}`);
  }
  if (ctx.opts.preset === 'none') return report ?? { ok: true };
  if (problem) throw new SmokeError(`${what}: the payload's report is malformed: ${problem}; without a valid report the image is not passed`);
  if (!report) {
    throw new SmokeError(
      `${what} exited 0 but printed no report (no line with "${PAYLOAD_MARKER}"): the payload did not run, or its output went elsewhere ` +
        '(an --output/--error in slurm-args, a wrapper that swallows stdout); without a report the image is not passed',
    );
  }
  return report;
}

async function runDirect(ctx: Context, exec: string[]): Promise<PayloadReport> {
  const { reporter } = ctx.opts;
  const [command, ...args] = exec;
  if (ctx.opts.dryRun) {
    reporter.info(`[dry-run] ${commandLine(command, args)}`);
    return { ok: true };
  }
  reporter.info(`$ ${commandLine(command, args)}`);
  const d = deadline(ctx);
  try {
    const run = await runProcess(command, args, { env: ctx.env, signal: d.signal, onLine: (l) => reporter.info(l) }).catch(notFound(command));
    if (d.why() === 'timeout') throw new SmokeError(`smoke test timed out after ${seconds(ctx.opts.timeoutMs)} (smoke-timeout); stopped it`);
    if (d.why() === 'aborted') throw new SmokeError('smoke test cancelled; stopped it');
    return payloadResult(ctx, `smoke test in ${ctx.opts.image}`, run);
  } finally {
    d.clear();
  }
}

function resources(ctx: Context): SlurmResources {
  return { ...ctx.opts, jobName: `build-image-smoke-${randomBytes(4).toString('hex')}` };
}

const SLURM_HINT = "launcher srun and sbatch need Slurm's client commands on this runner (or use launcher: direct)";

async function runSrun(ctx: Context, exec: string[]): Promise<PayloadReport> {
  const { reporter } = ctx.opts;
  const res = resources(ctx);
  const args = srunArgs(res, ctx.opts.slurmArgs, exec);
  if (ctx.opts.dryRun) {
    reporter.info(`[dry-run] ${commandLine('srun', args)}`);
    return { ok: true };
  }
  reporter.info(`$ ${commandLine('srun', args)}`);
  const d = deadline(ctx);
  try {
    const run = await runProcess('srun', args, { cwd: ctx.workDir, env: ctx.env, signal: d.signal, onLine: (l) => reporter.info(l) }).catch(
      notFound('srun', SLURM_HINT),
    );
    const why = d.why();
    if (why) {
      // srun passes SIGTERM to its step, but a job still pending (or a lost srun) is only ended by scancel.
      await cancelJob(ctx, ['--name', res.jobName], `--name=${res.jobName}`);
      throw new SmokeError(
        why === 'timeout'
          ? `smoke job ${res.jobName} timed out after ${seconds(ctx.opts.timeoutMs)} (smoke-timeout), queueing included; cancelled it`
          : `smoke test cancelled; cancelled job ${res.jobName}`,
      );
    }
    return payloadResult(ctx, `srun job ${res.jobName} on partition ${res.partition}`, run);
  } finally {
    d.clear();
  }
}

async function runSbatch(ctx: Context, exec: string[]): Promise<PayloadReport> {
  const { reporter } = ctx.opts;
  const res = resources(ctx);
  const script = jobScript(res, exec);
  const scriptPath = path.join(ctx.workDir, 'smoke.sbatch');
  const args = sbatchArgs(ctx.opts.slurmArgs, scriptPath);
  if (ctx.opts.dryRun) {
    reporter.info(`[dry-run] job script ${scriptPath}:\n${script}`);
    reporter.info(`[dry-run] ${commandLine('sbatch', args)}`);
    return { ok: true };
  }
  await writeFile(scriptPath, script, { mode: 0o755 });
  reporter.info(`job script:\n${script}`);
  reporter.info(`$ ${commandLine('sbatch', args)}`);
  const submitted = await runProcess('sbatch', args, { cwd: ctx.workDir, env: ctx.env }).catch(notFound('sbatch', SLURM_HINT));
  if (submitted.code !== 0) throw new SmokeError(`sbatch refused the job (exit ${submitted.code}): ${submitted.tail.join('\n')}`);
  const id = parseSbatchOutput(submitted.stdout);
  reporter.info(`submitted job ${id} (${res.jobName}) to partition ${res.partition}`);
  // Until it ends, a killed step's post: step (or the CLI's exit path) cancels it.
  const unholdJob = hold({ kind: 'slurm-job', id });
  const out = new Follower(path.join(ctx.workDir, `${id}.out`), (l) => reporter.info(l));
  const err = new Follower(path.join(ctx.workDir, `${id}.err`), (l) => reporter.info(l));
  const d = deadline(ctx);
  try {
    let status: JobStatus | undefined;
    let lastState = '';
    let unanswered = 0;
    for (;;) {
      await out.poll();
      await err.poll();
      const answer = await jobStatus(ctx, id);
      if ('unreachable' in answer) {
        // The scheduler stopped answering (slurmctld down or overloaded): ask again with backoff, then give up saying
        // that the job may still run; its work directory stays, since the job may still write there.
        const retries = ctx.opts.schedulerRetries ?? SCHEDULER_RETRIES;
        if (++unanswered > retries) {
          ctx.keepWorkDir = true;
          throw new SmokeError(
            `Slurm stopped answering about job ${id} (${answer.unreachable}); the job may still be running: check \`squeue -j ${id}\` ` +
              `and \`scancel ${id}\` if needed. Its work directory ${ctx.workDir} is kept for it. Without the job's final state the image is not passed`,
          );
        }
        const wait = (ctx.opts.pollMs ?? 2000) * 2 ** unanswered;
        reporter.warning(`Slurm did not answer about job ${id} (${answer.unreachable}); asking again in ${seconds(wait)} (${unanswered}/${retries})`);
        await sleep(wait, d.signal);
        if (d.why()) break;
        continue;
      }
      unanswered = 0;
      status = answer.status;
      if (status && status.state !== lastState) {
        lastState = status.state;
        reporter.info(`job ${id}: ${status.state}${status.reason ? ` (${status.reason})` : ''}`);
      }
      if (!status || isTerminal(status.state)) break;
      if (d.why()) break;
      await sleep(ctx.opts.pollMs ?? 2000, d.signal);
      if (d.why()) break;
    }
    const why = d.why();
    if (why && !(status && isTerminal(status.state))) {
      const gone = await cancelJob(ctx, [id], id);
      if (!gone) ctx.keepWorkDir = true;
      await out.poll(true);
      await err.poll(true);
      throw new SmokeError(
        why === 'timeout'
          ? `job ${id} timed out after ${seconds(ctx.opts.timeoutMs)} (smoke-timeout), queueing included; cancelled it (state was ${lastState || 'unknown'})`
          : `smoke test cancelled; cancelled job ${id}`,
      );
    }
    await out.poll(true);
    await err.poll(true);
    if (!status) {
      throw new SmokeError(
        `the final state of job ${id} is unknown: scontrol no longer knows it and sacct has no record; without it the image is not passed (output:\n    ${out.lines.slice(-5).join('\n    ')})`,
      );
    }
    // The job's own record of its command's exit status, written by the job script.
    const exitFile = await readFile(path.join(ctx.workDir, `${id}.exit`), 'utf8').catch(() => undefined);
    const ownCode = exitFile !== undefined && /^\d+\s*$/.test(exitFile) ? Number(exitFile) : undefined;
    if (ctx.opts.preset === 'none' && ownCode === undefined && status.state === 'COMPLETED') {
      throw new SmokeError(`job ${id} completed but left no exit status file (${id}.exit): the job script did not reach its end; the image is not passed`);
    }
    const code = ownCode ?? status.exitCode ?? (status.state === 'COMPLETED' ? 0 : 1);
    const failed = status.state !== 'COMPLETED';
    return payloadResult(ctx, `job ${id} (${status.state})`, { code: failed && code === 0 ? 1 : code, stdout: out.text, tail: err.lines }, err.lines.length > 0 ? err.lines : out.lines);
  } finally {
    d.clear();
    // A job that may still run stays listed, so the exit path or the post: step tries scancel again.
    if (!ctx.keepWorkDir) unholdJob();
  }
}

/** How often an unanswered status query is asked again (with doubling waits) before the run fails. */
const SCHEDULER_RETRIES = 5;

/**
 * The job's state: from scontrol while the controller knows the job, from sacct once it has forgotten it (past
 * MinJobAge); `status` undefined when neither has it; `unreachable` when the controller does not answer.
 */
async function jobStatus(ctx: Context, id: string): Promise<{ status?: JobStatus } | { unreachable: string }> {
  const show = await runProcess('scontrol', ['show', 'job', '-o', id], { env: ctx.env }).catch(notFound('scontrol', SLURM_HINT));
  if (show.code === 0) {
    const fromScontrol = parseScontrolJob(show.stdout);
    if (fromScontrol) return { status: fromScontrol };
  } else if (!/Invalid job id/i.test(show.tail.join(' '))) {
    return { unreachable: `scontrol: ${show.tail.slice(-2).join(' ') || `exit ${show.code}`}` };
  }
  const acct = await runProcess('sacct', ['-n', '-X', '-P', '-j', id, '-o', 'State,ExitCode'], { env: ctx.env }).catch(() => undefined);
  return { status: acct && acct.code === 0 ? parseSacct(acct.stdout) : undefined };
}

/** scancel, then wait (up to 60 s) until squeue no longer lists the job. */
async function cancelJob(ctx: Context, scancelArgs: string[], what: string): Promise<boolean> {
  const { reporter } = ctx.opts;
  reporter.info(`$ scancel ${scancelArgs.join(' ')}`);
  const run = await runProcess('scancel', scancelArgs, { env: ctx.env }).catch(() => undefined);
  if (!run || run.code !== 0) reporter.warning(`scancel ${what} failed: ${run?.tail.join(' ') ?? 'scancel not found'}`);
  const squeueArgs = scancelArgs[0] === '--name' ? ['-h', '-n', scancelArgs[1], '-o', '%i %T'] : ['-h', '-j', scancelArgs[0], '-o', '%i %T'];
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const q = await runProcess('squeue', squeueArgs, { env: ctx.env }).catch(() => undefined);
    if (!q || q.code !== 0 || q.stdout.trim() === '') return true;
    await sleep(500);
  }
  reporter.warning(`job ${what} is still listed by squeue 60 s after scancel`);
  return false;
}

/** Reads what a job appended to its output file since the last poll and passes on whole lines. */
class Follower {
  private offset = 0;
  private readonly splitter: LineSplitter;
  /** The lines that carry the payload's report marker (the rest is logged, not kept). */
  private readonly reportLines: string[] = [];
  readonly lines: string[] = [];

  constructor(
    private readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {
    this.splitter = new LineSplitter((line) => this.push(line));
  }

  get text(): string {
    return this.reportLines.join('\n');
  }

  async poll(final = false): Promise<void> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch {
      return; // not created yet: the job has not started
    }
    try {
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.splitter.write(buffer.subarray(0, bytesRead));
      }
      if (final) this.splitter.end();
    } finally {
      await handle.close();
    }
  }

  private push(line: string): void {
    if (line.includes(PAYLOAD_MARKER)) this.reportLines.push(line);
    this.lines.push(line.length > 2000 ? `${line.slice(0, 2000)} [...]` : line);
    if (this.lines.length > 200) this.lines.shift();
    this.onLine(line);
  }
}
