// Gives back what a run still holds when it was cut short: remote locks (released over a fresh connection, and
// only while they still carry this run's token), Slurm jobs (scancel), enroot containers (`enroot remove -f`, under
// the enroot paths they were created with) and temporary directories. Used by the CLI
// after a failure or a signal, by the action when its main step fails, and by the action's `post:` step when the
// main step was cancelled or killed.
import { rm } from 'node:fs/promises';
import type { Config } from './config/config.js';
import type { Reporter } from './report/reporter.js';
import { enrootEnvironment, heldResources, type Resource } from './util/resources.js';

export async function releaseResources(resources: Resource[], config: Config | undefined, reporter: Reporter): Promise<void> {
  const locks = resources.filter((r) => r.kind === 'remote-lock');
  if (locks.length > 0) {
    if (!config?.remote.sftp) {
      reporter.warning(`cannot release ${locks.map((l) => l.path).join(', ')}: no SFTP settings; they are taken over once stale`);
    } else {
      const { connectSftp } = await import('./publish/connect.js');
      const { lockDrafts, releaseLockFile } = await import('./publish/lock.js');
      const { sftpCall } = await import('./publish/remote.js');
      try {
        const conn = await connectSftp(config.remote.sftp, { reporter, retries: 2, retryDelayMs: 500 });
        try {
          for (const lock of locks) {
            // The record is made before the lock is taken, so it may name one this run never got: quiet then.
            if ((await releaseLockFile(conn, lock.path, lock.token, reporter, true)) === 'released') reporter.info(`released the lock ${lock.path}`);
            // A run killed while taking it may have left its draft beside it.
            for (const draft of lockDrafts(lock.path, lock.token)) await sftpCall((cb) => conn.sftp.unlink(draft, cb)).catch(() => undefined);
          }
        } finally {
          await conn.end();
        }
      } catch (error) {
        reporter.warning(`could not release ${locks.map((l) => l.path).join(', ')} (${(error as Error).message}); they are taken over once stale`);
      }
    }
  }
  for (const job of resources.filter((r) => r.kind === 'slurm-job')) {
    const { runProcess } = await import('./util/process.js');
    const run = await runProcess('scancel', [job.id]).catch(() => undefined);
    if (run?.code === 0) reporter.info(`cancelled Slurm job ${job.id}`);
    else reporter.warning(`scancel ${job.id} failed: ${run?.tail.join(' ') ?? 'scancel not found'}`);
  }
  for (const container of resources.filter((r) => r.kind === 'enroot-container')) {
    const { runProcess } = await import('./util/process.js');
    const run = await runProcess('enroot', ['remove', '-f', container.name], { env: enrootEnvironment(container, process.env) }).catch(() => undefined);
    if (run?.code === 0) reporter.info(`removed the enroot container ${container.name}`);
    // Held from before `enroot create`: one killed before it made the container has nothing to remove.
    else if (!run?.tail.some((l) => /No such file/i.test(l))) reporter.warning(`enroot remove -f ${container.name} failed: ${run?.tail.join(' ') ?? 'enroot not found'}`);
  }
  for (const dir of resources.filter((r) => r.kind === 'temp-dir')) {
    await rm(dir.path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Releases whatever this process still holds. */
export function releaseHeld(config: Config | undefined, reporter: Reporter): Promise<void> {
  return releaseResources(heldResources(), config, reporter);
}
