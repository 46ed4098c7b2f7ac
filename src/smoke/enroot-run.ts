// The direct launcher for an enroot image (.sqsh): `enroot create` of a container private to this run, `enroot start`
// with the payload mounted read-only, and `enroot remove -f` afterwards whatever happened (success, failure, timeout,
// cancellation), so `enroot list` shows nothing of the run.
import { randomBytes } from 'node:crypto';
import type { PayloadReport } from './compare.js';
import { runProcess } from '../util/process.js';
import { commandLine } from '../util/shell.js';
import { enrootStartArgs, type ContainerPlan } from './launch.js';
import { deadline, notFound, payloadResult, seconds, SmokeError, type Context } from './run-context.js';

const ENROOT_HINT = 'launcher direct runs a .sqsh with enroot, which must be installed on this runner (scripts/provision-enroot.sh)';

export async function runEnroot(ctx: Context, plan: ContainerPlan, argv: string[], containerEnv: Record<string, string>): Promise<PayloadReport> {
  const { reporter } = ctx.opts;
  const name = `build-image-smoke-${randomBytes(4).toString('hex')}`;
  const create = ['create', '--name', name, plan.image];
  const start = enrootStartArgs(name, plan, argv);
  const remove = ['remove', '-f', name];
  if (ctx.opts.dryRun) {
    for (const args of [create, start, remove]) reporter.info(`[dry-run] ${commandLine('enroot', args)}`);
    return { ok: true };
  }
  const env = { ...ctx.env, ...containerEnv };
  const d = deadline(ctx);
  try {
    reporter.info(`$ ${commandLine('enroot', create)}`);
    const created = await runProcess('enroot', create, { env, signal: d.signal, onLine: (l) => reporter.info(l) }).catch(notFound('enroot', ENROOT_HINT));
    stopped(ctx, d.why());
    if (created.code !== 0) throw new SmokeError(`enroot create of ${plan.image} failed (exit ${created.code}): ${created.tail.slice(-5).join('\n')}`);
    reporter.info(`$ ${commandLine('enroot', start)}`);
    const run = await runProcess('enroot', start, { env, signal: d.signal, onLine: (l) => reporter.info(l) });
    stopped(ctx, d.why());
    return payloadResult(ctx, `smoke test in ${plan.image} (enroot)`, run);
  } finally {
    d.clear();
    const removed = await runProcess('enroot', remove, { env: ctx.env }).catch(() => undefined);
    // A container that was never created has nothing to remove; anything else left behind is said.
    if (removed && removed.code !== 0 && !removed.tail.some((l) => /No such file|does not exist/i.test(l))) {
      reporter.warning(`enroot remove -f ${name} failed (exit ${removed.code}): ${removed.tail.slice(-3).join(' ')}`);
    }
  }
}

function stopped(ctx: Context, why: 'timeout' | 'aborted' | undefined): void {
  if (why === 'timeout') throw new SmokeError(`smoke test timed out after ${seconds(ctx.opts.timeoutMs)} (smoke-timeout); stopped it`);
  if (why === 'aborted') throw new SmokeError('smoke test cancelled; stopped it');
}
