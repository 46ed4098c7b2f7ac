// Promote: under an exclusive lock, move the staged image onto the live path in one atomic rename, swap the alias
// symlink atomically, and delete old versions of the same image family beyond `keep`.
import { randomBytes } from 'node:crypto';
import type { FileEntryWithStats, Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { connectSftp, SftpError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { acquireLock, type RemoteLock } from './lock.js';
import { remoteError, remoteJoin, sftpCall } from './remote.js';
import { remoteSha256, STAGING_LOCK_TIMEOUT_MS, stagingLockPath } from './stage.js';

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
  if (!/^[^/\0]+$/.test(opts.remoteName) || opts.remoteName.startsWith('.')) {
    throw new SftpError(`remote-name "${opts.remoteName}" must be a plain file name (no "/", not starting with ".")`, 'config');
  }
  if (opts.alias !== undefined && (!/^[^/\0]+$/.test(opts.alias) || opts.alias === opts.remoteName)) {
    throw new SftpError(`alias "${opts.alias}" must be a plain file name different from remote-name`, 'config');
  }
  const remotePath = remoteJoin(opts.remoteDir, opts.remoteName);
  const conn = await connectSftp(opts.target, { ...opts.connect, reporter });
  const sftp = conn.sftp;
  const lock = await acquireLock(() => conn, remoteJoin(opts.remoteDir, `.${opts.remoteName}.lock`), {
    timeoutMs: opts.lockTimeoutMs,
    owner: opts.owner,
    runUrl: opts.runUrl,
    reporter,
  }).catch(async (error) => {
    await conn.end();
    throw error instanceof SftpError ? error : remoteError(error, `taking the lock in ${opts.remoteDir}`);
  });
  let stagingLock: RemoteLock | undefined;
  try {
    if (opts.stagedPath !== remotePath) {
      if (opts.stagedSha256) {
        // Held until the rename, so no stager can replace the file between the check and the move.
        stagingLock = await acquireLock(() => conn, stagingLockPath(opts.stagedPath), { timeoutMs: STAGING_LOCK_TIMEOUT_MS, owner: opts.owner, runUrl: opts.runUrl, reporter });
      }
      const staged = await sftpCall<SftpStats>((cb) => sftp.stat(opts.stagedPath, cb)).catch(() => undefined);
      if (!staged?.isFile()) throw new SftpError(`the staged image ${opts.stagedPath} is missing (was it promoted by another run, or never staged?); run the stage step again`);
      if (opts.stagedSha256) await checkStaged(conn, opts.stagedPath, staged.size, opts.stagedSha256, reporter);
      await sftpCall((cb) => sftp.ext_openssh_rename(opts.stagedPath, remotePath, cb)).catch((error) => {
        throw remoteError(error, `moving ${opts.stagedPath} to ${remotePath} (posix-rename@openssh.com; the staging and remote dirs must be on the same file system)`);
      });
      reporter.info(`promoted ${opts.stagedPath} to ${remotePath} (atomic rename)`);
    } else {
      reporter.info(`${remotePath} is already live and identical; nothing to move`);
    }

    let aliasTarget: string | undefined;
    if (opts.alias) {
      const aliasPath = remoteJoin(opts.remoteDir, opts.alias);
      const temp = remoteJoin(opts.remoteDir, `.${opts.alias}.${randomBytes(6).toString('hex')}.tmp`);
      // Relative target: the link keeps working if the directory is mounted elsewhere.
      await sftpCall((cb) => sftp.symlink(opts.remoteName, temp, cb)).catch((error) => {
        throw remoteError(error, `creating the alias symlink ${temp}`);
      });
      await sftpCall((cb) => sftp.ext_openssh_rename(temp, aliasPath, cb)).catch(async (error) => {
        await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => undefined);
        throw remoteError(error, `replacing the alias ${aliasPath}`);
      });
      aliasTarget = opts.remoteName;
      reporter.info(`alias ${aliasPath} -> ${opts.remoteName}`);
    }

    const listing = await sftpCall<FileEntryWithStats[]>((cb) => sftp.readdir(opts.remoteDir, cb)).catch((error) => {
      throw remoteError(error, `listing ${opts.remoteDir} for retention`);
    });
    // Symlinks (aliases) are never retention candidates; a link's target is protected below.
    const files = listing.filter((e) => e.attrs.isFile()).map((e) => ({ name: e.filename, mtime: e.attrs.mtime }));
    const protectedNames = opts.protectedPaths.filter((p) => dirOf(p) === normDir(opts.remoteDir)).map((p) => p.slice(p.lastIndexOf('/') + 1));
    for (const link of listing.filter((e) => e.attrs.isSymbolicLink())) {
      const target = await sftpCall<string>((cb) => sftp.readlink(remoteJoin(opts.remoteDir, link.filename), cb)).catch(() => undefined);
      if (target && (!target.includes('/') || dirOf(target) === normDir(opts.remoteDir))) protectedNames.push(target.slice(target.lastIndexOf('/') + 1));
    }
    if (aliasTarget) protectedNames.push(aliasTarget);
    const family = imageFamily(opts.remoteName);
    const plan = planRetention(files, { family, keep: opts.keep, live: opts.remoteName, protected: protectedNames });
    const deleted: string[] = [];
    for (const name of plan.delete) {
      const path = remoteJoin(opts.remoteDir, name);
      try {
        await sftpCall((cb) => sftp.unlink(path, cb));
        deleted.push(path);
      } catch (error) {
        reporter.warning(`retention: could not delete ${path}: ${remoteError(error, 'deleting').message}`);
      }
    }
    reporter.info(
      `retention (family "${family}", keep ${opts.keep}): kept ${plan.keep.length ? plan.keep.join(', ') : 'nothing else'}; ${deleted.length ? `deleted ${deleted.join(', ')}` : 'deleted nothing'}`,
    );
    return { remotePath, deleted, tookOverLockFrom: lock.tookOverFrom };
  } catch (error) {
    throw error instanceof SftpError ? error : remoteError(error, `promoting ${opts.stagedPath} to ${remotePath}`);
  } finally {
    await stagingLock?.release().catch(() => undefined);
    await lock.release().catch(() => undefined);
    await conn.end().catch(() => undefined);
  }
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
