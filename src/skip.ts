// Whether a run compares its build key with the published image before building, and how: only where it can
// see the published image (SFTP settings and a target path), and not when `force` asks for a build anyway.
import type { Config } from './config/config.js';
import type { SftpSession } from './publish/session.js';
import type { Reporter } from './report/reporter.js';

/** The check build() runs once the build key is known, or undefined when this run always builds (said once). */
export function unchangedCheck(config: Config, reporter: Reporter, signal?: AbortSignal): ((buildKey: string) => Promise<string | undefined>) | undefined {
  const { sftp, remoteDir, remoteName, immutable = false } = config.remote;
  const force = config.build.force;
  if (force) reporter.info('force: true: building without comparing with the published image');
  if (force && !immutable) return undefined;
  if (!sftp || !remoteDir || !remoteName) {
    if (!force) reporter.info('no SFTP settings (sftp-host, remote-dir): the published image cannot be read, so there is no skip check; always building');
    return undefined;
  }
  return async (buildKey) => {
    const { publishedUnchanged } = await import('./publish/published.js');
    return publishedUnchanged({ target: sftp, remoteDir, remoteName, force, immutable, reporter, signal }, buildKey);
  };
}

/**
 * For a run without the build step (a separate publish job): refuses an existing name under `immutable`, unless
 * nothing is staged any more (a re-run after this image's own promotion, which promote recognises and finishes).
 */
export async function refuseOverwrite(config: Config, reporter: Reporter, signal?: AbortSignal, shared?: SftpSession): Promise<void> {
  const { sftp, remoteDir, remoteName, stagingDir, immutable } = config.remote;
  if (!immutable || !sftp || !remoteDir || !remoteName || !stagingDir) return;
  const { immutableError, remoteExists } = await import('./publish/published.js');
  // A publish job asks over its one connection; a separate stage job over a short one of its own.
  const session = shared ?? new (await import('./publish/session.js')).SftpSession(sftp, { reporter, signal });
  try {
    if ((await remoteExists(session, remoteDir, remoteName)) && (await remoteExists(session, stagingDir, remoteName))) {
      throw immutableError(`${remoteDir.replace(/\/+$/, '')}/${remoteName}`);
    }
  } finally {
    if (!shared) await session.end();
  }
}
