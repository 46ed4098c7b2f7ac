// What every launcher shares: the run's context, its deadline (smoke-timeout or cancellation), and the rule that
// turns a finished run into a report or an error that says what was missing.
import type { RunResult } from '../util/process.js';
import { CommandNotFoundError } from '../util/process.js';
import { UserError } from '../user-error.js';
import { PAYLOAD_MARKER, readPayloadReport, type PayloadReport } from './compare.js';
import type { SmokeOptions, SmokeResult } from './options.js';

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

export interface Context {
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

export function notFound(command: string, hint = '') {
  return (error: unknown): never => {
    if (error instanceof CommandNotFoundError) {
      throw new SmokeError(`${command} was not found on PATH${hint ? `: ${hint}` : ''}`);
    }
    throw error;
  };
}

/** An abort signal that fires on the caller's abort or after the timeout; says which. */
export function deadline(ctx: Context): { signal: AbortSignal; why: () => 'timeout' | 'aborted' | undefined; clear: () => void } {
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

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Turns a finished run into a report, or a SmokeError that says what was missing. No evidence, no pass: with the
 * PyTorch payload the run passes only with its parsed, schema-valid report saying `"ok": true`; with `preset: none`
 * only with a zero exit status.
 */
export function payloadResult(ctx: Context, what: string, run: Pick<RunResult, 'code' | 'stdout' | 'tail'>, errTail: string[] = run.tail): PayloadReport {
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

