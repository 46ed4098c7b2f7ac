// An exclusive lock file on the SFTP server, so two publishers of the same image cannot interleave. Created with
// an exclusive open (O_CREAT|O_EXCL on the server); a lock whose mtime is older than the timeout is stale and
// taken over; the holder refreshes the mtime while it works, so a long upload does not look stale.
import { randomBytes } from 'node:crypto';
import type { Reporter } from '../report/reporter.js';
import { isNetworkError, SftpError, type SftpConnection } from './connect.js';
import { remoteError, sftpCall } from './remote.js';

export interface LockOptions {
  owner?: string;
  runUrl?: string;
  /** A lock not refreshed for this long is stale and taken over. */
  timeoutMs: number;
  /** How often the holder refreshes the lock's mtime. Default: a quarter of the timeout, at most 60 s. */
  heartbeatMs?: number;
  pollMs?: number;
  reporter: Reporter;
  signal?: AbortSignal;
  /**
   * Identifies this holder. Pass the same token again after a dropped connection: a lock the server created for
   * an attempt whose answer was lost is then recognised as this run's own instead of waited out.
   */
  token?: string;
}

export interface RemoteLock {
  path: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOverFrom?: string;
  waitedMs: number;
  release(): Promise<void>;
}

function describeHolder(content: string): string {
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(content)?.[1];
  const parts = [field('owner') ?? 'unknown owner', field('run') && `run ${field('run')}`, field('time') && `since ${field('time')}`];
  return parts.filter(Boolean).join(', ');
}

/** Takes the lock at `path`, waiting while another live holder has it. `conn` may change between calls (reconnects). */
export async function acquireLock(conn: () => SftpConnection, path: string, opts: LockOptions): Promise<RemoteLock> {
  const token = opts.token ?? randomBytes(12).toString('hex');
  const content = [`owner: ${opts.owner ?? 'build-image'}`, `run: ${opts.runUrl ?? '-'}`, `time: ${new Date().toISOString()}`, `token: ${token}`, ''].join('\n');
  const pollMs = opts.pollMs ?? Math.max(100, Math.min(2000, opts.timeoutMs / 10));
  const started = Date.now();
  let announced = false;
  let tookOverFrom: string | undefined;
  let vanished = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new SftpError(`cancelled while waiting for the lock ${path}`);
    const sftp = conn().sftp;
    const stat = () =>
      sftpCall<{ mtime: number }>((cb) => sftp.stat(path, cb)).catch((error) => {
        if (isNetworkError(error)) throw error;
        return undefined;
      });
    let existing = await stat();
    if (!existing) {
      // Written whole under a name of its own, then renamed into place: the lock never exists half-written (a cut
      // connection cannot leave an empty lock that others wait out), and SFTP's plain rename refuses to replace an
      // existing file (OpenSSH's server links the new name, which fails when it exists), so of several contenders
      // exactly one succeeds.
      const temp = `${path}.${token}.new`;
      try {
        const handle = await sftpCall<Buffer>((cb) => sftp.open(temp, 'w', { mode: 0o644 }, cb));
        const data = Buffer.from(content);
        await sftpCall((cb) => sftp.write(handle, data, 0, data.length, 0, cb));
        await sftpCall((cb) => sftp.close(handle, cb));
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
    const held = await readText(conn(), path).catch(() => '');
    if (held.includes(`token: ${token}\n`)) break;
    const age = Date.now() - existing.mtime * 1000;
    if (age > opts.timeoutMs) {
      // Move the stale lock aside under a unique name: only one contender's rename can succeed.
      const aside = `${path}.stale-${token}`;
      const moved = await sftpCall((cb) => sftp.rename(path, aside, cb)).then(() => true, () => false);
      if (!moved) continue;
      const movedContent = await readText(conn(), aside).catch(() => '');
      if (movedContent === held) {
        await sftpCall((cb) => sftp.unlink(aside, cb)).catch(() => undefined);
        tookOverFrom = describeHolder(held);
        opts.reporter.warning(`took over a stale lock ${path} (held by ${tookOverFrom}; not refreshed for ${Math.round(age / 1000)} s, timeout ${Math.round(opts.timeoutMs / 1000)} s)`);
      } else {
        // A fresh lock was created between our read and our rename: put it back (plain rename refuses to overwrite).
        await sftpCall((cb) => sftp.rename(aside, path, cb)).catch(() => undefined);
      }
      continue;
    }
    if (!announced) {
      opts.reporter.info(`waiting for the lock ${path}, held by ${describeHolder(held)} (stale after ${Math.round(opts.timeoutMs / 1000)} s without refresh)`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const heartbeatMs = opts.heartbeatMs ?? Math.min(60_000, Math.max(50, opts.timeoutMs / 4));
  const heartbeat = setInterval(() => {
    const now = Math.floor(Date.now() / 1000);
    try {
      conn().sftp.utimes(path, now, now, () => undefined);
    } catch {
      // The connection is being replaced; the next beat refreshes it.
    }
  }, heartbeatMs);
  heartbeat.unref();
  return {
    path,
    tookOverFrom,
    waitedMs: Date.now() - started,
    async release() {
      clearInterval(heartbeat);
      const c = conn();
      // A dropped connection is thrown, so the caller can reconnect and release again; a lock already gone is fine.
      const current = await readText(c, path).catch((error) => {
        if (isNetworkError(error)) throw error;
        return undefined;
      });
      if (current === undefined) return;
      if (!current.includes(`token: ${token}`)) {
        opts.reporter.warning(`the lock ${path} was taken over by ${describeHolder(current)} while this run held it; leaving it in place`);
        return;
      }
      await sftpCall((cb) => c.sftp.unlink(path, cb)).catch((error) => {
        if (isNetworkError(error)) throw error;
        opts.reporter.warning(`could not remove the lock ${path}: ${remoteError(error, 'removing it').message}`);
      });
    },
  };
}

/**
 * Releases the locks in order, reconnecting once when the connection is gone or drops meanwhile. A lock that still
 * cannot be released is left to go stale; the caller's own outcome does not depend on it.
 */
export async function releaseLocks(locks: (RemoteLock | undefined)[], conn: () => SftpConnection, reconnect: () => Promise<void>): Promise<void> {
  const pending = locks.filter((l): l is RemoteLock => l !== undefined);
  for (let attempt = 0; pending.length > 0 && attempt < 2; attempt++) {
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

export async function readText(conn: SftpConnection, path: string): Promise<string> {
  const sftp = conn.sftp;
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb));
  try {
    const buf = Buffer.alloc(16 * 1024);
    const n = await sftpCall<number>((cb) => sftp.read(handle, buf, 0, buf.length, 0, (err, bytes) => cb(err, bytes)));
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}
