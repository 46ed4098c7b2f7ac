// The options of the SFTP steps, for the SIF and for the .sqsh alike: one server, staging directory, lock and
// verification, so the second file is handled exactly like the first.
import type { Config, SftpConfig } from './config/config.js';
import type { PromoteOptions } from './publish/promote.js';
import type { StageOptions } from './publish/stage.js';
import type { Reporter } from './report/reporter.js';

/** Staging one file, the SIF or the .sqsh: the same server, directory, lock and verification. */
export function stageOptions(config: Config, image: string, remoteName: string, reporter: Reporter, signal: AbortSignal | undefined, runUrl: string | undefined): StageOptions {
  return {
    target: target(config.remote.sftp),
    image,
    stagingDir: config.remote.stagingDir!,
    remoteName,
    liveDir: config.remote.remoteDir,
    reporter,
    signal,
    runUrl,
    verify: config.publish.verify,
    channels: config.publish.channels,
    lockStaleMs: config.publish.lockStaleMs,
    lockTimeoutMs: config.publish.lockTimeoutMs,
  };
}

/** Promoting one file, the SIF or the .sqsh: the same lock, atomic rename and retention (per format). */
export function promoteOptions(
  config: Config,
  file: Pick<PromoteOptions, 'stagedPath' | 'stagedSha256' | 'stagedSize' | 'remoteName' | 'alias' | 'retention'>,
  protectedPaths: string[],
  reporter: Reporter,
  signal: AbortSignal | undefined,
  runUrl: string | undefined,
): PromoteOptions {
  return {
    target: target(config.remote.sftp),
    ...file,
    remoteDir: config.remote.remoteDir!,
    keep: config.publish.keep,
    verify: config.publish.verify,
    lockStaleMs: config.publish.lockStaleMs,
    lockTimeoutMs: config.publish.lockTimeoutMs,
    protectedPaths,
    runUrl,
    reporter,
    signal,
    dryRun: config.dryRun,
  };
}

function target(sftp: SftpConfig | undefined): SftpConfig {
  if (!sftp) throw new Error('internal: SFTP step without SFTP configuration');
  return sftp;
}
