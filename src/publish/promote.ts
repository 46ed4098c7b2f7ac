// Promote: under an exclusive lock, move the staged image onto the live path in one atomic rename, swap the alias
// symlink atomically, and delete old versions of the same image family beyond `keep`. Fails closed (a staged file
// whose sha256 the server did not confirm never goes live) and converges (a re-run after any interruption finishes
// the job: an image already live with the expected sha256 is "already promoted", then the alias and retention).
import { randomBytes } from 'node:crypto';
import type { Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, type Summary } from '../report/summary.js';
import { isPlainFileName } from '../util/paths.js';
import { isNetworkError, SftpError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { acquireLock, DEFAULT_LOCK_STALE_MS, lockDrafts, releaseLocks, removeDrafts, type RemoteLock } from './lock.js';
import { remoteError, remoteJoin, sftpCall } from './remote.js';
import { cannotHashMessage, remoteSha256, type VerifyMode } from './remote-hash.js';
import { applyRetention, imageFamily, MANIFEST_NAME, readManifest, sweepLeftovers, updateManifest, type RetentionOptions, type RetentionOutcome } from './retention.js';
import { SftpSession } from './session.js';
import { stagingLockPath } from './stage.js';

export { imageFamily, isFamilyMember, planRetention, type RetentionFile, type RetentionPlan } from './retention.js';

export interface PromoteOptions {
  target: SftpTarget;
  stagedPath: string;
  /**
   * What the staged file must hash to. Another run of the same image may stage over it between this run's stage
   * and promote; with this set, promotion checks under the staging lock and refuses a file that is not this one.
   */
  stagedSha256?: string;
  /** The staged file's size, when known: the only check where `verify: size` is chosen and the server cannot hash. */
  stagedSize?: number;
  remoteDir: string;
  remoteName: string;
  alias?: string;
  /** Versions of the family to keep; 0 turns retention off. */
  keep: number;
  /** A lock not refreshed for this long is taken over. Default 2 min. */
  lockStaleMs?: number;
  /** The longest to wait for a live holder of the lock. */
  lockTimeoutMs: number;
  /** `sha256` (default) or `size`: what is accepted where the server cannot hash. */
  verify?: VerifyMode;
  /** Absolute remote paths never deleted (e.g. every image the docs table lists). */
  protectedPaths: string[];
  owner?: string;
  runUrl?: string;
  reporter: Reporter;
  /** How to connect when no `session` is given. */
  connect?: ConnectOptions;
  /** The job's connection, shared with its other SFTP steps (the record, the other format); left open. */
  session?: SftpSession;
  /**
   * `false` for the .sqsh promoted before its SIF: the SIF's promotion applies retention to both formats once both
   * are live, so an old version is never half deleted while the new SIF is not live yet. Default true.
   */
  retention?: boolean;
  signal?: AbortSignal;
  /** Say what would be promoted and deleted; change nothing. */
  dryRun?: boolean;
  /** Reconnects after a dropped connection before giving up. Default 5. */
  maxResumes?: number;
}

export interface PromoteResult {
  remotePath: string;
  /** `promoted`: this run renamed the staged file; `already-promoted`: the live file was already the image. */
  operation: 'promoted' | 'already-promoted' | 'dry-run';
  deleted: string[];
  retention?: RetentionOutcome;
  /** Set when a stale lock was taken over: who held it. */
  tookOverLockFrom?: string;
}

/** What earlier attempts achieved: after a dropped connection the promotion continues where it stopped. */
interface Progress {
  operation?: 'promoted' | 'already-promoted';
  /** The sha256 the live file is known to have (checked on the server). */
  liveSha256?: string;
  liveSize?: number;
  /** The size the staged file had when the rename was sent; set once it was. */
  renameSent?: number;
  recorded: boolean;
  aliasDone: boolean;
  retention?: RetentionOutcome;
}

export async function promoteImage(opts: PromoteOptions): Promise<PromoteResult> {
  const { reporter } = opts;
  if (!isPlainFileName(opts.remoteName)) throw new SftpError(`remote-name "${opts.remoteName}" must be a plain file name (no "/", not starting with ".")`, 'config');
  if (opts.alias !== undefined && (!isPlainFileName(opts.alias) || opts.alias === opts.remoteName)) {
    throw new SftpError(`alias "${opts.alias}" must be a plain file name different from remote-name`, 'config');
  }
  const remotePath = remoteJoin(opts.remoteDir, opts.remoteName);
  const session = opts.session ?? new SftpSession(opts.target, { ...opts.connect, reporter, signal: opts.signal });
  try {
    await session.open();
    return await (opts.dryRun ? dryRun(session.current, opts, remotePath) : promoteOver(session, opts, remotePath));
  } finally {
    if (!opts.session) await session.end();
  }
}

/** The promotion proper, on the session's connection, reconnecting after a dropped one. */
async function promoteOver(session: SftpSession, opts: PromoteOptions, remotePath: string): Promise<PromoteResult> {
  const { reporter } = opts;
  const conn = () => session.current;
  // One token for every attempt, so locks created by an attempt whose answer was lost are recognised as ours.
  const token = randomBytes(12).toString('hex');
  const lockOptions = { owner: opts.owner, runUrl: opts.runUrl, reporter, token, signal: opts.signal, staleMs: opts.lockStaleMs ?? DEFAULT_LOCK_STALE_MS };
  let lock: RemoteLock | undefined;
  let stagingLock: RemoteLock | undefined;
  const state: Progress = { recorded: false, aliasDone: !opts.alias };
  const deleted = new Set<string>();
  const maxResumes = opts.maxResumes ?? 5;
  const liveLockPath = remoteJoin(opts.remoteDir, `.${opts.remoteName}.lock`);
  let finished = false;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        if (opts.signal?.aborted) throw new SftpError('promotion cancelled; nothing more was changed');
        await session.open();
        lock ??= await acquireLock(conn, liveLockPath, { ...lockOptions, waitTimeoutMs: opts.lockTimeoutMs });
        if (!state.operation) {
          // Held until the rename, so no stager can replace the file between the check and the move.
          if (opts.stagedSha256 && opts.stagedPath !== remotePath) {
            stagingLock ??= await acquireLock(conn, stagingLockPath(opts.stagedPath), { ...lockOptions, waitTimeoutMs: opts.lockTimeoutMs });
          }
          await settleLiveFile(conn(), opts, remotePath, state);
        }
        if (stagingLock) {
          await stagingLock.release();
          stagingLock = undefined;
        }
        if (!state.recorded) {
          await recordPublication(conn(), opts, state, token);
          state.recorded = true;
        }
        if (!state.aliasDone) {
          await swapAlias(conn(), opts, token);
          state.aliasDone = true;
        }
        if (!state.retention) await sweepLeftovers(conn(), opts.remoteDir, token, lockOptions.staleMs);
        if (opts.retention === false) reporter.info(`retention: applied by the SIF's promotion, to both formats, once both are live`);
        else state.retention ??= await applyRetention(conn(), retentionOptions(opts, token), deleted);
        const tookOverLockFrom = lock.tookOverFrom;
        await lock.release();
        lock = undefined;
        finished = true;
        return { remotePath, operation: state.operation!, deleted: [...deleted], retention: state.retention, tookOverLockFrom };
      } catch (error) {
        if (!isNetworkError(error) || attempt >= maxResumes || opts.signal?.aborted) {
          throw error instanceof SftpError ? error : remoteError(error, `promoting ${opts.stagedPath} to ${remotePath}`);
        }
        reporter.warning(`connection lost while promoting (${(error as Error).message}); reconnecting to continue (${attempt + 1}/${maxResumes})`);
        await session.drop();
      }
    }
  } finally {
    // Also after a failure: locks left behind would block the next publisher until they go stale.
    const reconnect = async () => {
      await session.open({ signal: undefined, retries: 1 });
    };
    await releaseLocks([stagingLock, lock], conn, reconnect);
    if (!finished) {
      // Drafts an interrupted step may have left: lock drafts, stale locks moved aside, manifest and alias drafts.
      const drafts = [
        ...lockDrafts(liveLockPath, token),
        ...lockDrafts(stagingLockPath(opts.stagedPath), token),
        `${remoteJoin(opts.remoteDir, MANIFEST_NAME)}.${token}.new`,
        ...(opts.alias ? [remoteJoin(opts.remoteDir, `.${opts.alias}.${token}.tmp`)] : []),
      ];
      const unheld = [...(lock ? [] : [liveLockPath]), ...(stagingLock || !opts.stagedSha256 ? [] : [stagingLockPath(opts.stagedPath)])];
      await removeDrafts(drafts, conn, reconnect, { locks: unheld, token, reporter });
    }
  }
}

function retentionOptions(opts: PromoteOptions, token: string): RetentionOptions {
  const { remoteDir, remoteName, keep, alias, protectedPaths, reporter } = opts;
  return { remoteDir, remoteName, family: imageFamily(remoteName), keep, alias, protectedPaths, reporter, token };
}

async function statOrUndefined(conn: SftpConnection, path: string): Promise<SftpStats | undefined> {
  return sftpCall<SftpStats>((cb) => conn.sftp.stat(path, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
}

/**
 * Puts the image at the live path, or recognises that it is there already: the staged file is checked and renamed;
 * with no staged file, a live file with the expected sha256 (or the one this run's lost rename put there) means
 * the promotion already happened.
 */
async function settleLiveFile(conn: SftpConnection, opts: PromoteOptions, remotePath: string, state: Progress): Promise<void> {
  const { reporter } = opts;
  const staged = opts.stagedPath === remotePath ? undefined : await statOrUndefined(conn, opts.stagedPath);
  if (staged?.isFile()) {
    if (opts.stagedSha256) await checkFile(conn, opts, opts.stagedPath, staged.size, 'the staged image');
    else reporter.info(`no staged-sha256 given: promoting ${opts.stagedPath} as the stage step verified it`);
    state.renameSent = staged.size;
    await sftpCall((cb) => conn.sftp.ext_openssh_rename(opts.stagedPath, remotePath, cb)).catch((error) => {
      throw isNetworkError(error) ? error : remoteError(error, `moving ${opts.stagedPath} to ${remotePath} (posix-rename@openssh.com; the staging and remote dirs must be on the same file system)`);
    });
    reporter.info(`promoted ${opts.stagedPath} to ${remotePath} (atomic rename)`);
    state.operation = 'promoted';
    state.liveSha256 = opts.stagedSha256;
    state.liveSize = staged.size;
    return;
  }
  const live = await statOrUndefined(conn, remotePath);
  if (!live?.isFile()) {
    throw new SftpError(`nothing to promote: the staged image ${opts.stagedPath} is missing and nothing is live at ${remotePath}; run the stage step first`);
  }
  if (opts.stagedSha256) {
    const outcome = await checkFile(conn, opts, remotePath, live.size, 'the live image', true);
    if (outcome === 'different') {
      throw new SftpError(
        `the staged image ${opts.stagedPath} is missing and ${remotePath} holds a different image: stage this image again (the stage step uploads it, since the live file differs), then publish`,
      );
    }
  } else if (state.renameSent !== undefined && live.size === state.renameSent) {
    // Our locks kept everyone else away, so a staged file gone and a live file of its size mean our rename happened.
  } else {
    reporter.info(`no staged-sha256 given, so the live file's content was not compared; pass the stage's sha256 output to confirm it`);
  }
  state.operation = state.renameSent !== undefined ? 'promoted' : 'already-promoted';
  state.liveSha256 = opts.stagedSha256;
  state.liveSize = live.size;
  reporter.info(
    state.operation === 'promoted'
      ? `promoted ${opts.stagedPath} to ${remotePath} (atomic rename; it completed before the connection dropped)`
      : `already promoted: ${remotePath} already holds the image${opts.stagedSha256 ? ` (sha256 ${opts.stagedSha256})` : ''}; finishing the alias and retention`,
  );
}

/**
 * Checks a remote file against `stagedSha256` with the server's own hash. A transport failure is thrown as a network
 * error (the caller reconnects and asks again); a server that cannot hash is accepted only under `verify: size`.
 * With `soft`, a mismatch is returned instead of thrown.
 */
async function checkFile(conn: SftpConnection, opts: PromoteOptions, path: string, size: number, what: string, soft = false): Promise<'same' | 'different'> {
  const expected = opts.stagedSha256!;
  const remote = await remoteSha256(conn, path, size);
  if ('refused' in remote) {
    if ((opts.verify ?? 'sha256') !== 'size') throw new SftpError(cannotHashMessage(path, remote.refused), 'config');
    if (opts.stagedSize !== undefined && opts.stagedSize !== size) {
      if (soft) return 'different';
      throw new SftpError(`${what} ${path} holds ${size} bytes, not the ${opts.stagedSize} staged: another run staged over it; nothing was promoted, run the stage step again`);
    }
    opts.reporter.info(`cannot hash ${path} on the server (${remote.refused}); accepted by ${opts.stagedSize !== undefined ? 'its size' : 'its presence'}, as verify: size allows`);
    return 'same';
  }
  if (remote.sha256 !== expected) {
    if (soft) return 'different';
    throw new SftpError(`${what} ${path} has sha256 ${remote.sha256}, not ${expected}: another run staged over it; nothing was promoted, run the stage step again`);
  }
  opts.reporter.info(`${path} has sha256 ${expected} (${remote.tool})`);
  return 'same';
}

/** Records in the directory's manifest that this tool published the live file (what retention trusts later). */
async function recordPublication(conn: SftpConnection, opts: PromoteOptions, state: Progress, token: string): Promise<void> {
  const name = opts.remoteName;
  // Without a confirmed sha256, an image found live is not claimed as ours unless it already was.
  if (state.operation === 'already-promoted' && !state.liveSha256 && !(await readManifest(conn, opts.remoteDir)).images[name]) return;
  const record = { family: imageFamily(name), sha256: state.liveSha256, size: state.liveSize ?? 0, published: new Date().toISOString(), run: opts.runUrl };
  await updateManifest(
    conn,
    opts.remoteDir,
    token,
    (images) => {
      images[name] = record;
    },
    (images) => images[name]?.published === record.published,
  );
}

/** Points the alias at the new image: a symlink made under a name of this run's, renamed over the alias atomically. */
async function swapAlias(conn: SftpConnection, opts: PromoteOptions, token: string): Promise<void> {
  const sftp = conn.sftp;
  const aliasPath = remoteJoin(opts.remoteDir, opts.alias!);
  const current = await sftpCall<string>((cb) => sftp.readlink(aliasPath, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  if (current === opts.remoteName) {
    opts.reporter.info(`alias ${aliasPath} -> ${opts.remoteName} (already)`);
    return;
  }
  const temp = remoteJoin(opts.remoteDir, `.${opts.alias}.${token}.tmp`);
  // Left by an attempt cut short: the same name, so it is replaced rather than left behind.
  await sftpCall((cb) => sftp.unlink(temp, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
  });
  // Relative target: the link keeps working if the directory is mounted elsewhere.
  await sftpCall((cb) => sftp.symlink(opts.remoteName, temp, cb)).catch((error) => {
    throw isNetworkError(error) ? error : remoteError(error, `creating the alias symlink ${temp}`);
  });
  await sftpCall((cb) => sftp.ext_openssh_rename(temp, aliasPath, cb)).catch(async (error) => {
    if (isNetworkError(error)) throw error;
    await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => undefined);
    throw remoteError(error, `replacing the alias ${aliasPath}`);
  });
  opts.reporter.info(`alias ${aliasPath} -> ${opts.remoteName}`);
}

/** Reads what a promotion would do, under no lock, and changes nothing. */
async function dryRun(conn: SftpConnection, opts: PromoteOptions, remotePath: string): Promise<PromoteResult> {
  const staged = opts.stagedPath === remotePath ? undefined : await statOrUndefined(conn, opts.stagedPath);
  opts.reporter.info(
    staged?.isFile()
      ? `dry run: would promote ${opts.stagedPath} (${formatBytes(staged.size)}) to ${remotePath}${opts.alias ? ` and point ${opts.alias} at it` : ''}`
      : `dry run: nothing staged at ${opts.stagedPath}; a publish would finish an earlier promotion only if ${remotePath} holds the image`,
  );
  const deleted = new Set<string>();
  if (opts.retention === false) return { remotePath, operation: 'dry-run', deleted: [] };
  const retention = await applyRetention(conn, { ...retentionOptions(opts, 'dry-run'), dryRun: true }, deleted);
  return { remotePath, operation: 'dry-run', deleted: [...deleted], retention };
}

/** The promotion's facts for the job summary: what went live, what retention kept and deleted. */
export function promoteSummary(result: PromoteResult): Summary {
  const r = result.retention;
  const verb = result.operation === 'dry-run' ? 'Would delete' : 'Deleted';
  return {
    title: 'Publish',
    facts: [
      { label: 'Live', value: result.remotePath, code: true },
      { label: 'Operation', value: result.operation === 'already-promoted' ? 'already promoted (finished alias and retention)' : result.operation },
      { label: 'Kept', value: r && r.kept.length ? r.kept.join(', ') : r ? 'retention off' : '-' },
      { label: verb, value: result.deleted.length ? result.deleted.join(', ') : 'nothing' },
      ...(r?.notOurs.length ? [{ label: 'Left alone', value: `${r.notOurs.join(', ')} (not published by build-image)` }] : []),
      ...(result.tookOverLockFrom ? [{ label: 'Took over lock', value: result.tookOverLockFrom }] : []),
    ],
  };
}
