// The direct launcher for an enroot image (.sqsh): `enroot create` of a container private to this run, `enroot start`
// with the payload mounted read-only, and `enroot remove -f` afterwards whatever happened (success, failure, timeout,
// cancellation), so `enroot list` shows nothing of the run. The container is held (util/resources.ts) from before
// its creation until it is removed: after a `kill -9` the action's post step removes it; the CLI has no post step,
// so the next direct smoke test under the same data path removes a dead run's container (its PID is in the name).
import { randomBytes } from 'node:crypto';
import type { PayloadReport } from './compare.js';
import { runProcess } from '../util/process.js';
import { enrootContainer, hold } from '../util/resources.js';
import { commandLine } from '../util/shell.js';
import { enrootStartArgs, type ContainerPlan } from './launch.js';
import { deadline, notFound, payloadResult, seconds, SmokeError, type Context } from './run-context.js';

const ENROOT_HINT = 'launcher direct runs a .sqsh with enroot, which must be installed on this runner (scripts/provision-enroot.sh)';

export async function runEnroot(ctx: Context, plan: ContainerPlan, argv: string[], containerEnv: Record<string, string>): Promise<PayloadReport> {
  const { reporter } = ctx.opts;
  const name = `build-image-smoke-${process.pid}-${randomBytes(4).toString('hex')}`;
  const create = ['create', '--name', name, plan.image];
  const start = enrootStartArgs(name, plan, argv);
  const remove = ['remove', '-f', name];
  if (ctx.opts.dryRun) {
    for (const args of [create, start, remove]) reporter.info(`[dry-run] ${commandLine('enroot', args)}`);
    return { ok: true };
  }
  const env = { ...ctx.env, ...containerEnv };
  await removeDeadRuns(ctx, env);
  const unhold = hold(enrootContainer(name, env));
  const d = deadline(ctx);
  try {
    reporter.info(`$ ${commandLine('enroot', create)}`);
    // Each in a process group of its own, which a watchdog ends even after `kill -9` of the tool.
    const created = await runProcess('enroot', create, { env, signal: d.signal, ownGroup: true, onLine: (l) => reporter.info(l) }).catch(notFound('enroot', ENROOT_HINT));
    stopped(ctx, d.why());
    if (created.code !== 0) throw new SmokeError(`enroot create of ${plan.image} failed (exit ${created.code}): ${created.tail.slice(-5).join('\n')}`);
    reporter.info(`$ ${commandLine('enroot', start)}`);
    const run = await runProcess('enroot', start, { env, signal: d.signal, ownGroup: true, onLine: (l) => reporter.info(l) });
    stopped(ctx, d.why());
    return payloadResult(ctx, `smoke test in ${plan.image} (enroot)`, run);
  } finally {
    d.clear();
    // The environment `enroot create` had (an ENROOT_* among the container variables included): the same data path.
    const removed = await runProcess('enroot', remove, { env }).catch(() => undefined);
    // A container that was never created (or no enroot to create it) has nothing to remove; anything else left
    // behind is said, and stays held for the exit path or the post step to try again.
    if (removed && removed.code !== 0 && !removed.tail.some((l) => /No such file|does not exist/i.test(l))) {
      reporter.warning(`enroot remove -f ${name} failed (exit ${removed.code}): ${removed.tail.slice(-3).join(' ')}`);
    } else unhold();
  }
}

/** Containers of smoke tests whose process is gone (kill -9 of the CLI): `build-image-smoke-PID-HEX`. */
async function removeDeadRuns(ctx: Context, env: NodeJS.ProcessEnv): Promise<void> {
  const list = await runProcess('enroot', ['list'], { env }).catch(() => undefined);
  for (const left of list?.stdout.split(/\s+/) ?? []) {
    const pid = Number(/^build-image-smoke-(\d+)-[0-9a-f]+$/.exec(left)?.[1] ?? 0);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const removed = await runProcess('enroot', ['remove', '-f', left], { env });
    if (removed.code === 0) ctx.opts.reporter.info(`removed the enroot container ${left}, left by a smoke test that died (process ${pid})`);
  }
}

function alive(pid: number): boolean {
  try {
    return process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function stopped(ctx: Context, why: 'timeout' | 'aborted' | undefined): void {
  if (why === 'timeout') throw new SmokeError(`smoke test timed out after ${seconds(ctx.opts.timeoutMs)} (smoke-timeout); stopped it`);
  if (why === 'aborted') throw new SmokeError('smoke test cancelled; stopped it');
}
