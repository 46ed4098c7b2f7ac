// What the builders other than apptainer (enroot here, the U2CB service) share with the SIF build: a deadline
// (build-timeout) and cancellation that end the running command's whole process group, a partial file beside the
// output renamed into place only once verified, and the same outputs and summary.
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatDuration } from '../report/summary.js';
import { sha256File } from '../util/hash.js';
import { runProcess, type RunResult } from '../util/process.js';
import { hold } from '../util/resources.js';
import { commandLine } from '../util/shell.js';
import { removeStaleLeftovers } from './leftovers.js';
import type { BuildConfig } from '../config/config.js';
import type { Reporter } from '../report/reporter.js';
import { BuildError, buildSummary, reportBuilt, type BuildOptions, type BuildResult, type Plan } from './build.js';
import type { BuilderInfo } from './builder.js';
import type { Finding } from './lint.js';
import type { TagChoice } from './tags.js';

/** What a builder other than apptainer (src/build/enroot.ts, u2cb.ts) is given: the plan, made as for apptainer. */
export interface ElsewhereJob {
  config: BuildConfig;
  reporter: Reporter;
  options: BuildOptions;
  plan: Plan;
  builder: BuilderInfo;
  findings: Finding[];
  started: number;
  sourceTag?: TagChoice;
}

/** A build's deadline: aborted by build-timeout or by the run's cancellation, whichever comes first. */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.controller.abort();

  constructor(private readonly job: ElsewhereJob) {
    this.timer = setTimeout(this.onAbort, job.config.timeoutMs ?? 6 * 3600_000);
    job.options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (job.options.signal?.aborted) this.controller.abort();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Throws the user's message when the deadline passed or the run was cancelled; else nothing. */
  check(what: string): void {
    if (this.job.options.signal?.aborted) throw new BuildError(`build cancelled; ${what}`);
    if (this.controller.signal.aborted) {
      throw new BuildError(`build timed out after ${formatDuration((this.job.config.timeoutMs ?? 0) / 1000)} (build-timeout); ${what}`);
    }
  }

  end(): void {
    clearTimeout(this.timer);
    this.job.options.signal?.removeEventListener('abort', this.onAbort);
  }
}

/** Runs one step of the build, its output in the log, stopped (its process group) when the deadline passes. */
export async function step(job: ElsewhereJob, deadline: Deadline, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  job.reporter.info(`$ ${commandLine(command, args)}`);
  return runProcess(command, args, {
    env: options.env,
    cwd: options.cwd,
    signal: deadline.signal,
    onLine: (line) => job.reporter.info(line),
    tailLines: 40,
    ownGroup: true,
  });
}

/** A private working directory and the partial image's path beside the output, both held for the post step. */
export async function workspace(job: ElsewhereJob, base: string, kind: string): Promise<{ dir: string; partial: string; release: () => Promise<void> }> {
  // Leftovers of runs that died (kill -9, a lost runner) are recognised by the PID in their names.
  await removeStaleLeftovers(job.config.output, job.reporter, base);
  const dir = await mkdtemp(path.join(base, `build-image-${process.pid}-${kind}-`));
  const output = job.config.output;
  const partial = path.join(path.dirname(output), `.${path.basename(output)}.partial-${process.pid}`);
  const unholdDir = hold({ kind: 'temp-dir', path: dir });
  const unholdPartial = hold({ kind: 'temp-dir', path: partial });
  return {
    dir,
    partial,
    async release() {
      await rm(partial, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
      unholdDir();
      unholdPartial();
    },
  };
}

/** Where a build's private directories go: `tmp-dir`, the runner's temporary directory, or the system's. */
export function tempBase(job: ElsewhereJob, env: NodeJS.ProcessEnv): string {
  return job.config.tmpDir ?? env.RUNNER_TEMP ?? os.tmpdir();
}

/** What every result carries, built or planned. */
export function resultBase(job: ElsewhereJob, command: string[]): Omit<BuildResult, 'image' | 'sha256' | 'size' | 'durationSeconds' | 'dryRun'> {
  const { plan } = job;
  return {
    sourceUri: plan.sourceUri,
    sourceDigest: plan.sourceDigests[plan.sourceDigests.length - 1],
    sourceTag: job.sourceTag,
    buildKey: plan.buildKey,
    builder: job.builder,
    fakeroot: false,
    labels: plan.labels,
    findings: job.findings,
    command,
  };
}

/** The dry run's outcome: the commands it would run, the build key. */
export async function planned(job: ElsewhereJob, commands: string[][]): Promise<BuildResult> {
  for (const [command, ...args] of commands) job.reporter.info(`would run: ${commandLine(command, args)}`);
  job.reporter.setOutput('build-key', job.plan.buildKey);
  job.reporter.setOutput('skipped', 'false');
  const result: BuildResult = { ...resultBase(job, commands[0]), image: job.config.output, sha256: '', size: 0, durationSeconds: (Date.now() - job.started) / 1000, dryRun: true };
  await job.reporter.summary(buildSummary(result));
  return result;
}

/** The verified partial image renamed into place, with its outputs and summary. */
export async function finish(job: ElsewhereJob, partial: string, command: string[], compression?: string): Promise<BuildResult> {
  const [sha256, size] = await Promise.all([sha256File(partial), stat(partial).then((s) => s.size)]);
  await rename(partial, job.config.output);
  const result: BuildResult = {
    ...resultBase(job, command),
    image: job.config.output,
    sha256,
    size,
    durationSeconds: (Date.now() - job.started) / 1000,
    compression,
    dryRun: false,
  };
  await reportBuilt(result, job.reporter);
  return result;
}
