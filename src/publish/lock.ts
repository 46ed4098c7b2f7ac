// An exclusive lock file on the SFTP server, so two publishers of the same image cannot interleave. The lock is
// written whole under a draft name and renamed into place (SFTP's plain rename refuses to replace a file, so of
// several contenders exactly one wins). The holder refreshes its mtime (a heartbeat); a lock not refreshed for
// `staleMs` belongs to a run that died and is taken over, so a killed publisher blocks the next one for minutes.
import { randomBytes } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { hold } from '../util/resources.js';
import { isNetworkError, SftpError, type SftpConnection } from './connect.js';
import { remoteError, removeLeftovers, sftpCall } from './remote.js';

/** A holder refreshes its lock every 30 s, so one untouched for 2 minutes belongs to a run that died. */
export const DEFAULT_LOCK_STALE_MS = 120_000;

export interface LockOptions {
  owner?: string;
  runUrl?: string;
  /** A lock not refreshed for this long is stale and taken over. */
  staleMs: number;
  /** The longest this run waits for a live holder. Default: no limit. */
  waitTimeoutMs?: number;
  /** How often the holder refreshes the lock's mtime. Default: a quarter of `staleMs`, at most 60 s. */
  heartbeatMs?: number;
  pollMs?: number;
  reporter: Reporter;
  signal?: AbortSignal;
  /**
   * Resolves once the lock's directory exists (a check sent alongside the first try at the lock, so a directory that
   * is there costs no round trip of its own); rejects when it cannot be made.
   */
  dirReady?: Promise<unknown>;
  /**
   * Identifies this holder. Pass the same token again after a dropped connection: a lock the server created for
   * an attempt whose answer was lost is then recognised as this run's own instead of waited out.
   */
  token?: string;
  /**
   * Called as the first try's rename is sent: what it sends over the same session is applied after the rename, so
   * where that rename takes the lock (`RemoteLock.takenFirst`) its answers describe the server as the lock found it.
   */
  alongside?: () => void;
}

export interface RemoteLock {
  path: string;
  token: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOverFrom?: string;
  waitedMs: number;
  /** Taken by the first try's rename, the one `LockOptions.alongside` was sent after. */
  takenFirst: boolean;
  /**
   * Reads the lock now, ahead of the release (while the caller's last requests are answered): a release soon after,
   * on the same connection, then only removes it. Soon: within a quarter of `staleMs` (at most 30 s), while the
   * heartbeat keeps any other run from taking it over.
   */
  confirm(): Promise<void>;
  release(): Promise<void>;
}

export function describeHolder(content: string): string {
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(content)?.[1];
  const parts = [field('owner') ?? 'unknown owner', field('run') && `run ${field('run')}`, field('time') && `since ${field('time')}`];
  return parts.filter(Boolean).join(', ');
}

/** Takes the lock at `path`, waiting while another live holder has it. `conn` may change between calls (reconnects). */
export async function acquireLock(conn: () => SftpConnection, path: string, opts: LockOptions): Promise<RemoteLock> {
  const token = opts.token ?? randomBytes(12).toString('hex');
  // Recorded before the first request, not after: a run killed between the server's rename and its answer leaves
  // a lock carrying this token, and only this record lets the exit path or the post step give it back at once.
  // Giving back is by token, so a lock this run never took is left alone.
  const held = hold({ kind: 'remote-lock', path, token });
  try {
    return await takeLock(conn, path, { ...opts, token }, held);
  } catch (error) {
    // The caller reconnects and tries again with the same token, or gives up; the record stays for either.
    if (isNetworkError(error)) throw new SftpError(`connection lost while taking the lock ${path} (${(error as Error).message})`, 'network');
    // A refusal (permission, full disk) or a timeout: our draft must not outlive this attempt.
    if (conn().isOpen()) await sftpCall((cb) => conn().sftp.unlink(draftPath(path, token), cb)).catch(() => undefined);
    held();
    throw error;
  }
}

function draftPath(path: string, token: string): string {
  return `${path}.${token}.new`;
}

async function takeLock(conn: () => SftpConnection, path: string, opts: LockOptions & { token: string }, release: () => void): Promise<RemoteLock> {
  const { token } = opts;
  const content = [`owner: ${opts.owner ?? 'build-image'}`, `run: ${opts.runUrl ?? '-'}`, `time: ${new Date().toISOString()}`, `token: ${token}`, ''].join('\n');
  const pollMs = opts.pollMs ?? Math.max(100, Math.min(2000, opts.staleMs / 10));
  const started = Date.now();
  let announced = false;
  let tookOverFrom: string | undefined;
  let vanished = 0;
  const taken = await firstTry(conn().sftp, path, draftPath(path, token), content, opts.dirReady, opts.alongside);
  while (!taken) {
    if (opts.signal?.aborted) throw new SftpError(`cancelled while waiting for the lock ${path}`);
    const sftp = conn().sftp;
    const stat = () =>
      sftpCall<{ mtime: number }>((cb) => sftp.stat(path, cb)).catch((error) => {
        if (isNetworkError(error)) throw error;
        return undefined;
      });
    let existing = await stat();
    if (!existing) {
      const temp = draftPath(path, token);
      try {
        const handle = await sftpCall<Buffer>((cb) => sftp.open(temp, 'w', { mode: 0o644 }, cb));
        const data = Buffer.from(content);
        // Sent together: one session's requests are applied in order, so the close follows the write.
        await Promise.all([sftpCall((cb) => sftp.write(handle, data, 0, data.length, 0, cb)), sftpCall((cb) => sftp.close(handle, cb))]);
      } catch (error) {
        if (isNetworkError(error)) throw error;
        throw remoteError(error, `creating the lock file ${path}`);
      }
      try {
        await sftpCall((cb) => sftp.rename(temp, path, cb));
        break;
      } catch (error) {
        if (isNetworkError(error)) throw error;
        await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => undefined);
        existing = await stat();
        if (!existing) {
          // Released between our rename and our stat: try again; a rename that fails with no lock in the way is an error.
          if (++vanished < 5) continue;
          throw remoteError(error, `creating the lock file ${path}`);
        }
      }
    }
    // Held: by us (an earlier attempt's rename went through, its answer was lost), by a live holder, or stale.
    const held = await readText(conn(), path).catch((error) => {
      if (isNetworkError(error)) throw error;
      return '';
    });
    if (held.includes(`token: ${token}\n`)) break;
    const age = Date.now() - existing.mtime * 1000;
    if (age > opts.staleMs) {
      // Move the stale lock aside under a unique name: only one contender's rename can succeed.
      const aside = `${path}.stale-${token}`;
      const moved = await sftpCall((cb) => sftp.rename(path, aside, cb)).then(
        () => true,
        (error) => {
          if (isNetworkError(error)) throw error;
          return false;
        },
      );
      if (!moved) continue;
      const movedContent = await readText(conn(), aside).catch(() => '');
      if (movedContent === held) {
        await sftpCall((cb) => sftp.unlink(aside, cb)).catch(() => undefined);
        tookOverFrom = describeHolder(held);
        opts.reporter.warning(`took over a stale lock ${path} (held by ${tookOverFrom}; not refreshed for ${Math.round(age / 1000)} s, stale after ${Math.round(opts.staleMs / 1000)} s)`);
      } else {
        // A fresh lock was created between our read and our rename: put it back (plain rename refuses to overwrite).
        await sftpCall((cb) => sftp.rename(aside, path, cb)).catch(() => undefined);
      }
      continue;
    }
    const waited = Date.now() - started;
    if (opts.waitTimeoutMs !== undefined && waited > opts.waitTimeoutMs) {
      throw new SftpError(
        `gave up waiting for the lock ${path} after ${Math.round(waited / 1000)} s (lock-timeout): it is held by ${describeHolder(held)}, refreshed within the last ${Math.round(opts.staleMs / 1000)} s (lock-stale), so that run still seems to be working`,
      );
    }
    if (!announced) {
      opts.reporter.info(`waiting for the lock ${path}, held by ${describeHolder(held)} (taken over if not refreshed for ${Math.round(opts.staleMs / 1000)} s)`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  // Leftovers of other runs are swept while the caller goes on (given back before the lock is released).
  const swept = sweepDrafts(conn(), path, token, opts.staleMs).catch(() => undefined);
  const heartbeatMs = opts.heartbeatMs ?? Math.min(60_000, Math.max(50, opts.staleMs / 4));
  const heartbeat = setInterval(() => {
    const now = Math.floor(Date.now() / 1000);
    try {
      const c = conn();
      if (c.isOpen()) c.sftp.utimes(path, now, now, () => undefined);
    } catch {
      // The connection is being replaced; the next beat refreshes it.
    }
  }, heartbeatMs);
  heartbeat.unref();
  let confirmed: { on: SftpConnection; at: number } | undefined;
  return {
    path,
    token,
    tookOverFrom,
    takenFirst: taken,
    waitedMs: Date.now() - started,
    async confirm() {
      const on = conn();
      const at = Date.now();
      const current = await readText(on, path).catch(() => undefined);
      if (current !== undefined && carriesToken(current, token)) confirmed = { on, at };
    },
    async release() {
      clearInterval(heartbeat);
      await swept;
      const c = conn();
      const fresh = confirmed && confirmed.on === c && c.isOpen() && Date.now() - confirmed.at < Math.min(opts.staleMs / 4, 30_000);
      await (fresh ? unlinkLock(c, path, opts.reporter) : releaseLockFile(c, path, token, opts.reporter));
      release();
    },
  };
}

/**
 * The lock taken in two round trips where nobody holds it: the draft opened (while the caller checks the directory),
 * then its content, close and rename sent together (one session's requests are applied in order). False where the
 * lock exists or the directory did not: the caller's loop takes it the long way.
 */
async function firstTry(sftp: SFTPWrapper, path: string, temp: string, content: string, dirReady?: Promise<unknown>, alongside?: () => void): Promise<boolean> {
  const opening = sftpCall<Buffer>((cb) => sftp.open(temp, 'w', { mode: 0o644 }, cb));
  opening.catch(() => undefined);
  await dirReady;
  const handle = await opening.catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  if (!handle) return false;
  const data = Buffer.from(content);
  const sent = [
    sftpCall((cb) => sftp.write(handle, data, 0, data.length, 0, cb)),
    sftpCall((cb) => sftp.close(handle, cb)),
    sftpCall((cb) => sftp.rename(temp, path, cb)),
  ];
  alongside?.();
  const [written, closed, renamed] = await Promise.allSettled(sent);
  for (const r of [written, closed, renamed]) if (r.status === 'rejected' && isNetworkError(r.reason)) throw r.reason;
  const failed = [written, closed].find((r) => r.status === 'rejected');
  if (failed) {
    // An incomplete draft was renamed into place all the same: it is ours, and must not stand as a lock.
    if (renamed.status === 'fulfilled') await sftpCall((cb) => sftp.unlink(path, cb)).catch(() => undefined);
    throw remoteError((failed as PromiseRejectedResult).reason, `creating the lock file ${path}`);
  }
  if (renamed.status === 'fulfilled') return true;
  await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => undefined);
  return false;
}

/** What became of a lock given back: removed, not there, another holder's (left in place), or not removable. */
export type LockRelease = 'released' | 'absent' | 'others' | 'failed';

/**
 * Removes the lock if it is still the holder's (by token); a dropped connection is thrown so the caller can retry.
 * With `quietIfOthers`, another holder's lock is left without a warning (a lock this run may never have taken).
 */
export async function releaseLockFile(conn: SftpConnection, path: string, token: string, reporter: Reporter, quietIfOthers = false): Promise<LockRelease> {
  const current = await readText(conn, path).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  if (current === undefined) return 'absent';
  if (!carriesToken(current, token)) {
    if (!quietIfOthers) reporter.warning(`the lock ${path} was taken over by ${describeHolder(current)} while this run held it; leaving it in place`);
    return 'others';
  }
  return unlinkLock(conn, path, reporter);
}

function carriesToken(content: string, token: string): boolean {
  return content.includes(`token: ${token}`);
}

function unlinkLock(conn: SftpConnection, path: string, reporter: Reporter): Promise<LockRelease> {
  return sftpCall((cb) => conn.sftp.unlink(path, cb)).then(
    () => 'released' as const,
    (error) => {
      if (isNetworkError(error)) throw error;
      reporter.warning(`could not remove the lock ${path}: ${remoteError(error, 'removing it').message}`);
      return 'failed' as const;
    },
  );
}

/**
 * Drafts (`LOCK.TOKEN.new`) and stale locks moved aside (`LOCK.stale-TOKEN`) are left behind when a connection
 * drops between two of their steps.
 */
function sweepDrafts(conn: SftpConnection, path: string, token: string, staleMs: number): Promise<void> {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const isDraft = (name: string) => name.startsWith(`${base}.`) && (name.endsWith('.new') || name.slice(base.length).startsWith('.stale-'));
  return removeLeftovers(conn, path.slice(0, slash) || '/', isDraft, token, staleMs);
}

/**
 * Releases the locks in order, reconnecting once when the connection is gone or drops meanwhile. A lock that still
 * cannot be released is left to go stale; the caller's own outcome does not depend on it.
 */
export async function releaseLocks(locks: (RemoteLock | undefined)[], conn: () => SftpConnection, reconnect: () => Promise<void>): Promise<void> {
  const pending = locks.filter((l): l is RemoteLock => l !== undefined);
  for (let attempt = 0; pending.length > 0 && attempt < 3; attempt++) {
    try {
      if (!conn().isOpen()) await reconnect();
      while (pending.length > 0) {
        await pending[0].release();
        pending.shift();
      }
    } catch {
      await conn().end().catch(() => undefined);
    }
  }
}

/** The names an attempt with `token` may leave beside the lock `path` when its connection drops. */
export function lockDrafts(path: string, token: string): string[] {
  return [draftPath(path, token), `${path}.stale-${token}`];
}

/**
 * Removes what an interrupted attempt of this run may have left, over a new connection if needed: drafts, and locks
 * whose creation went through although the answer was lost (only while they still carry this run's token).
 */
export async function removeDrafts(
  paths: string[],
  conn: () => SftpConnection,
  reconnect: () => Promise<void>,
  own?: { locks: string[]; token: string; reporter: Reporter },
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      if (!conn().isOpen()) await reconnect();
      for (const lock of own?.locks ?? []) await releaseLockFile(conn(), lock, own!.token, own!.reporter, true);
      for (const p of paths) {
        await sftpCall((cb) => conn().sftp.unlink(p, cb)).catch((error) => {
          if (isNetworkError(error)) throw error;
        });
      }
      return;
    } catch {
      await conn().end().catch(() => undefined);
    }
  }
}

export async function readText(conn: SftpConnection, path: string): Promise<string> {
  const sftp = conn.sftp;
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb));
  const buf = Buffer.alloc(16 * 1024);
  // The read and the close sent together: one round trip.
  const reading = sftpCall<number>((cb) => sftp.read(handle, buf, 0, buf.length, 0, (err, bytes) => cb(err, bytes)));
  const closing = sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  try {
    return buf.subarray(0, await reading).toString('utf8');
  } finally {
    await closing;
  }
}
