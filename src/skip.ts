// Whether a run compares its build key with the published image before building, and how: only where it can
// see the published image (SFTP settings and a target path), and not when `force` asks for a build anyway.
import type { Config } from './config/config.js';
import type { Reporter } from './report/reporter.js';

/** The check build() runs once the build key is known, or undefined when this run always builds (said once). */
export function unchangedCheck(config: Config, reporter: Reporter, signal?: AbortSignal): ((buildKey: string) => Promise<string | undefined>) | undefined {
  if (config.build.force) {
    reporter.info('force: true: building without comparing with the published image');
    return undefined;
  }
  const { sftp, remoteDir, remoteName } = config.remote;
  if (!sftp || !remoteDir || !remoteName) {
    reporter.info('no SFTP settings (sftp-host, remote-dir): the published image cannot be read, so there is no skip check; always building');
    return undefined;
  }
  return async (buildKey) => {
    const { publishedUnchanged } = await import('./publish/published.js');
    return publishedUnchanged({ target: sftp, remoteDir, remoteName, reporter, signal }, buildKey);
  };
}
