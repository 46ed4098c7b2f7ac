// The direct launcher: the container runs on this runner (apptainer exec, or enroot for a .sqsh); and the container
// start latency, measured here for every launcher.
import type { PayloadReport } from './compare.js';
import { findExecutable, runProcess } from '../util/process.js';
import { commandLine } from '../util/shell.js';
import { startLatencyArgs } from './launch.js';
import { deadline, notFound, payloadResult, seconds, SmokeError, type Context } from './run-context.js';

/** Median of a few `exec IMAGE true` on this runner. */
export async function startLatency(ctx: Context, image: string): Promise<number | undefined> {
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

export async function runDirect(ctx: Context, exec: string[]): Promise<PayloadReport> {
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

