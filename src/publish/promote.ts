// Promote: under an exclusive lock, move the staged image onto the live path in one atomic rename, swap the alias
// symlink atomically, and delete old versions of the same image family beyond `keep`.
import { randomBytes } from 'node:crypto';
import type { FileEntryWithStats, Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { connectSftp, isNetworkError, SftpError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { acquireLock, releaseLocks, type RemoteLock } from './lock.js';
import { remoteError, remoteJoin, sftpCall } from './remote.js';
import { remoteSha256, STAGING_LOCK_TIMEOUT_MS, stagingLockPath } from './stage.js';
import { isPlainFileName } from '../util/paths.js';

export interface PromoteOptions {
  target: SftpTarget;
  stagedPath: string;
  /**
   * What the staged file must hash to. Another run of the same image may stage over it between this run's stage
   * and promote; with this set, promotion checks under the staging lock and refuses a file that is not this one.
   */
  stagedSha256?: string;
  remoteDir: string;
  remoteName: string;
  alias?: string;
  keep: number;
  lockTimeoutMs: number;
  /** Absolute remote paths never deleted (e.g. every image the docs table lists). */
  protectedPaths: string[];
  owner?: string;
  runUrl?: string;
  reporter: Reporter;
  connect?: ConnectOptions;
  /** Reconnects after a dropped connection before giving up. Default 5. */
  maxResumes?: number;
}

export interface PromoteResult {
  remotePath: string;
  deleted: string[];
  /** Set when a stale lock was taken over. */
  tookOverLockFrom?: string;
}

/**
 * An image's family: its name without the version, i.e. everything before the first `-` or `_` that is followed by
 * a digit, with the extension dropped. `pytorch-24.10.sif`, `pytorch-24.11-py3.sif` → `pytorch`;
 * `gromacs-2018.2.simg` → `gromacs`; `cuda_12.4.sif` → `cuda`; a name without a version is its own family.
 */
export function imageFamily(name: string): string {
  const m = /^(.+?)[-_]v?\d/.exec(name);
  return m ? m[1] : name.replace(/\.(sif|simg|sqsh|img)$/i, '');
}

/** The image files of a directory listing that belong to a family (same family, an image extension). */
export function isFamilyMember(name: string, family: string): boolean {
  return !name.startsWith('.') && /\.(sif|simg|sqsh|img)$/i.test(name) && imageFamily(name) === family;
}

export interface RetentionFile {
  name: string;
  mtime: number;
}

export interface RetentionPlan {
  keep: string[];
  delete: string[];
}

/**
 * Chooses what to delete: of the family's files, the newest `keep` (by mtime, then name) stay; so do the live file,
 * the alias target and every protected name, whether or not they count among the newest. `keep` < 1 keeps everything.
 */
export function planRetention(files: RetentionFile[], opts: { family: string; keep: number; live: string; protected: string[] }): RetentionPlan {
  const members = files.filter((f) => isFamilyMember(f.name, opts.family));
  if (opts.keep < 1) return { keep: members.map((f) => f.name), delete: [] };
  const sorted = [...members].sort((a, b) => b.mtime - a.mtime || b.name.localeCompare(a.name, 'en', { numeric: true }));
  const newest = new Set(sorted.slice(0, opts.keep).map((f) => f.name));
  const never = new Set([opts.live, ...opts.protected]);
  const keep: string[] = [];
  const del: string[] = [];
  for (const f of sorted) (newest.has(f.name) || never.has(f.name) ? keep : del).push(f.name);
  return { keep, delete: del };
}

export async function promoteImage(opts: PromoteOptions): Promise<PromoteResult> {
  const { reporter } = opts;
  if (!isPlainFileName(opts.remoteName)) {
    throw new SftpError(`remote-name "${opts.remoteName}" must be a plain file name (no "/", not starting with ".")`, 'config');
  }
  if (opts.alias !== undefined && (!isPlainFileName(opts.alias) || opts.alias === opts.remoteName)) {
    throw new SftpError(`alias "${opts.alias}" must be a plain file name different from remote-name`, 'config');
  }
  const remotePath = remoteJoin(opts.remoteDir, opts.remoteName);
  const connectOpts: ConnectOptions = { ...opts.connect, reporter };
  let conn = await connectSftp(opts.target, connectOpts);
  // One token for every attempt, so locks created by an attempt whose answer was lost are recognised as ours.
  const token = randomBytes(12).toString('hex');
  const lockOptions = { owner: opts.owner, runUrl: opts.runUrl, reporter, token };
  let lock: RemoteLock | undefined;
  let stagingLock: RemoteLock | undefined;
  // What earlier attempts achieved: after a dropped connection the promotion continues where it stopped, and
  // every step is safe to repeat.
  const move: MoveState = { done: opts.stagedPath === remotePath, checked: !opts.stagedSha256 };
  let aliasDone = !opts.alias;
  const deleted = new Set<string>();
  const maxResumes = opts.maxResumes ?? 5;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!conn.isOpen()) conn = await connectSftp(opts.target, connectOpts);
        lock ??= await acquireLock(() => conn, remoteJoin(opts.remoteDir, `.${opts.remoteName}.lock`), { ...lockOptions, timeoutMs: opts.lockTimeoutMs });
        if (!move.done) {
          // Held until the rename, so no stager can replace the file between the check and the move.
          if (opts.stagedSha256) stagingLock ??= await acquireLock(() => conn, stagingLockPath(opts.stagedPath), { ...lockOptions, timeoutMs: STAGING_LOCK_TIMEOUT_MS });
          await moveStaged(conn, opts, remotePath, move);
        } else if (opts.stagedPath === remotePath && attempt === 0) {
          reporter.info(`${remotePath} is already live and identical; nothing to move`);
        }
        if (stagingLock) {
          await stagingLock.release();
          stagingLock = undefined;
        }
        if (!aliasDone) {
          await swapAlias(conn, opts, token);
          aliasDone = true;
        }
        await retain(conn, opts, deleted);
        const tookOverLockFrom = lock.tookOverFrom;
        await lock.release();
        lock = undefined;
        return { remotePath, deleted: [...deleted], tookOverLockFrom };
      } catch (error) {
        if (!isNetworkError(error) || attempt >= maxResumes) {
          throw error instanceof SftpError ? error : remoteError(error, `promoting ${opts.stagedPath} to ${remotePath}`);
        }
        reporter.warning(`connection lost while promoting (${(error as Error).message}); reconnecting to continue (${attempt + 1}/${maxResumes})`);
        await conn.end().catch(() => undefined);
      }
    }
  } finally {
    // Also after a failure: locks left behind would block the next publisher until they go stale.
    await releaseLocks([stagingLock, lock], () => conn, async () => {
      conn = await connectSftp(opts.target, { ...connectOpts, retries: 1 });
    });
    await conn.end().catch(() => undefined);
  }
}

interface MoveState {
  /** The staged file is at the live path. */
  done: boolean;
  /** Its sha256 was checked (or there was nothing to check against). */
  checked: boolean;
  /** The size the staged file had when the rename was sent; set once it was. */
  sentSize?: number;
}

/** Renames the staged file onto the live path; recognises a rename that went through before the connection dropped. */
async function moveStaged(conn: SftpConnection, opts: PromoteOptions, remotePath: string, state: MoveState): Promise<void> {
  const { reporter } = opts;
  const sftp = conn.sftp;
  const staged = await sftpCall<SftpStats>((cb) => sftp.stat(opts.stagedPath, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  if (!staged?.isFile()) {
    if (state.sentSize !== undefined) {
      // Our locks kept everyone else away, so a staged file gone and a live file of its size mean our rename happened.
      const live = await sftpCall<SftpStats>((cb) => sftp.stat(remotePath, cb));
      if (live.isFile() && live.size === state.sentSize) {
        reporter.info(`promoted ${opts.stagedPath} to ${remotePath} (atomic rename; it completed before the connection dropped)`);
        state.done = true;
        return;
      }
    }
    throw new SftpError(`the staged image ${opts.stagedPath} is missing (was it promoted by another run, or never staged?); run the stage step again`);
  }
  if (!state.checked) {
    await checkStaged(conn, opts.stagedPath, staged.size, opts.stagedSha256!, reporter);
    state.checked = true;
  }
  state.sentSize = staged.size;
  await sftpCall((cb) => sftp.ext_openssh_rename(opts.stagedPath, remotePath, cb)).catch((error) => {
    throw isNetworkError(error) ? error : remoteError(error, `moving ${opts.stagedPath} to ${remotePath} (posix-rename@openssh.com; the staging and remote dirs must be on the same file system)`);
  });
  reporter.info(`promoted ${opts.stagedPath} to ${remotePath} (atomic rename)`);
  state.done = true;
}

/** Points the alias at the new image: a symlink made under a name of this run's, renamed over the alias atomically. */
async function swapAlias(conn: SftpConnection, opts: PromoteOptions, token: string): Promise<void> {
  const sftp = conn.sftp;
  const aliasPath = remoteJoin(opts.remoteDir, opts.alias!);
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

/** Deletes the family's versions beyond `keep`, never the live file, a link's target or a protected path. */
async function retain(conn: SftpConnection, opts: PromoteOptions, deleted: Set<string>): Promise<void> {
  const { reporter } = opts;
  const sftp = conn.sftp;
  const listing = await sftpCall<FileEntryWithStats[]>((cb) => sftp.readdir(opts.remoteDir, cb)).catch((error) => {
    throw isNetworkError(error) ? error : remoteError(error, `listing ${opts.remoteDir} for retention`);
  });
  // Symlinks (aliases) are never retention candidates; a link's target is protected below.
  const files = listing.filter((e) => e.attrs.isFile()).map((e) => ({ name: e.filename, mtime: e.attrs.mtime }));
  const protectedNames = opts.protectedPaths.filter((p) => dirOf(p) === normDir(opts.remoteDir)).map((p) => p.slice(p.lastIndexOf('/') + 1));
  for (const link of listing.filter((e) => e.attrs.isSymbolicLink())) {
    const target = await sftpCall<string>((cb) => sftp.readlink(remoteJoin(opts.remoteDir, link.filename), cb)).catch((error) => {
      if (isNetworkError(error)) throw error;
      return undefined;
    });
    if (target && (!target.includes('/') || dirOf(target) === normDir(opts.remoteDir))) protectedNames.push(target.slice(target.lastIndexOf('/') + 1));
  }
  if (opts.alias) protectedNames.push(opts.remoteName);
  const family = imageFamily(opts.remoteName);
  const plan = planRetention(files, { family, keep: opts.keep, live: opts.remoteName, protected: protectedNames });
  for (const name of plan.delete) {
    const path = remoteJoin(opts.remoteDir, name);
    try {
      await sftpCall((cb) => sftp.unlink(path, cb));
      deleted.add(path);
    } catch (error) {
      if (isNetworkError(error)) throw error;
      reporter.warning(`retention: could not delete ${path}: ${remoteError(error, 'deleting').message}`);
    }
  }
  reporter.info(
    `retention (family "${family}", keep ${opts.keep}): kept ${plan.keep.length ? plan.keep.join(', ') : 'nothing else'}; ${deleted.size ? `deleted ${[...deleted].join(', ')}` : 'deleted nothing'}`,
  );
}

/** Refuses a staged file whose server-side sha256 is not the expected one; says so when the server cannot hash. */
async function checkStaged(conn: SftpConnection, path: string, size: number, expected: string, reporter: Reporter): Promise<void> {
  const remote = await remoteSha256(conn, path, size);
  if (!remote.sha256) {
    reporter.info(`cannot hash ${path} on the server (${remote.reason}); promoting it without checking its sha256`);
    return;
  }
  if (remote.sha256 !== expected) {
    throw new SftpError(
      `the staged image ${path} has sha256 ${remote.sha256}, not ${expected}: another run staged over it; nothing was promoted, run the stage step again`,
    );
  }
  reporter.info(`${path} still has sha256 ${expected} (${remote.tool})`);
}

function normDir(dir: string): string {
  return dir.replace(/\/+$/, '') || '/';
}

function dirOf(path: string): string {
  return normDir(path.slice(0, path.lastIndexOf('/') + 1));
}
