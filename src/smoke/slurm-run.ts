// The Slurm launchers: srun, waited on in the foreground, and sbatch, whose job is followed by polling the
// scheduler (scontrol, then sacct once it forgets the job) and reading its output files as they grow.
import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LineSplitter } from '../util/lines.js';
import { runProcess } from '../util/process.js';
import { hold } from '../util/resources.js';
import { commandLine } from '../util/shell.js';
import { sleep } from '../util/sleep.js';
import { PAYLOAD_MARKER, type PayloadReport } from './compare.js';
import { isTerminal, jobScript, parseSacct, parseSbatchOutput, parseScontrolJob, sbatchArgs, srunArgs, type JobStatus, type SlurmResources } from './launch.js';
import { deadline, notFound, payloadResult, seconds, SmokeError, type Context } from './run-context.js';

export function resources(ctx: Context): SlurmResources {
  return { ...ctx.opts, jobName: `build-image-smoke-${randomBytes(4).toString('hex')}` };
}

export const SLURM_HINT = "launcher srun and sbatch need Slurm's client commands on this runner (or use launcher: direct)";

/** srun around apptainer exec, or around pyxis's --container-* options (`env`: the variables pyxis passes in). */
export async function runSrun(ctx: Context, exec: string[], env: Record<string, string> = {}): Promise<PayloadReport> {
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
    const run = await runProcess('srun', args, { cwd: ctx.workDir, env: { ...ctx.env, ...env }, signal: d.signal, onLine: (l) => reporter.info(l) }).catch(
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

export async function runSbatch(ctx: Context, exec: string[]): Promise<PayloadReport> {
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
export async function cancelJob(ctx: Context, scancelArgs: string[], what: string): Promise<boolean> {
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
