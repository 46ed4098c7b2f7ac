// Stage: uploads the image next to (never onto) the live path. Many SFTP writes in flight, the sha256 computed
// from the same reads, resume from what the server holds after a dropped connection, then verification and an
// atomic rename of `.NAME.partial` to `NAME` in the staging dir.
import { createHash, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import type { Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration, type Summary } from '../report/summary.js';
import { sha256File } from '../util/hash.js';
import { isPlainFileName } from '../util/paths.js';
import { shellQuote } from '../util/shell.js';
import { connectSftp, HostKeyError, isNetworkError, SftpError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { acquireLock, DEFAULT_LOCK_STALE_MS, lockDrafts, releaseLocks, removeDrafts, type RemoteLock } from './lock.js';
import { remoteError, remoteJoin, sftpCall, sftpCode } from './remote.js';
import { cannotHashMessage, execHash, HASH_STDIN, hashTimeoutMs, remoteSha256, viaSh, type HashTool, type VerifyMode } from './remote-hash.js';

export type { HashTool } from './remote-hash.js';

export interface StageOptions {
  target: SftpTarget;
  image: string;
  stagingDir: string;
  remoteName: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /** Where the image is published; an identical file there means nothing needs sending. */
  liveDir?: string;
  connect?: ConnectOptions;
  /** Seconds between progress lines. Default 5 s. */
  progressIntervalMs?: number;
  /** Bytes per SFTP write request. Default 64 KiB (capped by the server's limits@openssh.com). */
  chunkSize?: number;
  /** SFTP write requests in flight. Default 64. */
  requests?: number;
  /**
   * While uploading, the server hashes each completed segment of this many bytes (`dd | openssl dgst` over SSH exec),
   * so verification overlaps the transfer instead of re-reading the whole file afterwards. Default 64 MiB; 0: off.
   */
  verifySegmentBytes?: number;
  /**
   * Segment hashing stops (and the whole file is hashed once at the end) when the upload runs faster than this many
   * bytes per second: then the link is not the bottleneck, and hashing every byte a second time on the runner, plus
   * reading it back on the server, slows the transfer more than one pass afterwards costs. Default 100 MiB/s;
   * Infinity: always hash in segments.
   */
  segmentMaxRate?: number;
  /** Reconnects after a dropped connection before giving up. Default 5. */
  maxResumes?: number;
  /** `sha256` (default): the server must hash the upload; `size`: a size check is accepted where it cannot. */
  verify?: VerifyMode;
  /** The staging lock is stale after this long without refresh. Default 2 min. */
  lockStaleMs?: number;
  /** The longest to wait for another stager of the same name. Default: no limit. */
  lockTimeoutMs?: number;
  owner?: string;
  runUrl?: string;
}

export interface StageResult {
  /** The staged file; when the live file was already identical, the live path itself. */
  stagedPath: string;
  sha256: string;
  /** Bytes written to the server over all attempts. */
  bytesSent: number;
  uploadSkipped: boolean;
  /** `sha256`: the server hashed the file and it matched; `size`: the account cannot run commands. */
  verification: 'sha256' | 'size';
  /** The server's program that computed the hash (`openssl` or `sha256sum`), when it did. */
  hashTool?: HashTool;
  /** Offsets the upload resumed from after dropped connections (or a partial left by an earlier run). */
  resumedFrom: number[];
  /** Wall time of the whole stage, and of the upload alone (without connecting, verifying and renaming). */
  seconds: number;
  uploadSeconds: number;
}

const MiB = 1024 * 1024;

/** The lock that serialises stagers of one staged path (and a promotion checking that path). */
export function stagingLockPath(staged: string): string {
  const slash = staged.lastIndexOf('/');
  return `${staged.slice(0, slash + 1)}.${staged.slice(slash + 1)}.partial.lock`;
}

export function describeVerification(result: Pick<StageResult, 'verification' | 'hashTool'>): string {
  return result.verification === 'sha256' ? `remote sha256 (${result.hashTool ?? 'sha256sum'})` : 'size only';
}

export async function stageImage(opts: StageOptions): Promise<StageResult> {
  const { reporter } = opts;
  if (!isPlainFileName(opts.remoteName)) {
    throw new SftpError(`remote-name "${opts.remoteName}" must be a plain file name (no "/", not starting with ".")`, 'config');
  }
  const local = await stat(opts.image).catch(() => undefined);
  if (!local?.isFile()) throw new SftpError(`image ${opts.image} does not exist or is not a file`, 'config');
  const size = local.size;
  const started = Date.now();
  const partial = remoteJoin(opts.stagingDir, `.${opts.remoteName}.partial`);
  const staged = remoteJoin(opts.stagingDir, opts.remoteName);
  const livePath = opts.liveDir ? remoteJoin(opts.liveDir, opts.remoteName) : undefined;
  const connectOpts: ConnectOptions = { retryDelayMs: 1000, ...opts.connect, reporter, signal: opts.signal };

  let conn = await connectSftp(opts.target, connectOpts);
  reporter.info(`connected to ${opts.target.username}@${opts.target.host}:${opts.target.port} (host key ${conn.hostKey.keyType} ${conn.hostKey.fingerprint}, trusted by ${conn.hostKey.via})`);
  let lock: RemoteLock | undefined;
  // One token for every attempt at the lock, so a lock created by an attempt whose answer was lost is ours.
  const lockToken = randomBytes(12).toString('hex');
  const progress = new Progress(reporter, size, opts.progressIntervalMs ?? 5000);
  try {
    let checked = false;
    const resumedFrom: number[] = [];
    let sha256 = '';
    let verified: Pick<StageResult, 'verification' | 'hashTool'> = { verification: 'size' };
    // Every step after connecting is inside the loop: a connection dropped while preparing (creating the
    // directory, taking the lock, comparing with the server's copies) is survived like one dropped while sending.
    for (let resumes = 0; ; resumes++) {
      try {
        if (!conn.isOpen()) conn = await connectSftp(opts.target, connectOpts);
        if (!lock) {
          await ensureDir(conn, opts.stagingDir);
          lock = await acquireLock(() => conn, stagingLockPath(staged), {
            staleMs: opts.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
            waitTimeoutMs: opts.lockTimeoutMs,
            owner: opts.owner,
            runUrl: opts.runUrl,
            reporter,
            signal: opts.signal,
            token: lockToken,
          });
        }
        if (!checked) {
          const same = await findIdentical(conn, opts.image, size, [staged, ...(livePath ? [livePath] : [])], reporter);
          if (same) {
            reporter.info(`${same.path} already has sha256 ${same.sha256}: nothing sent`);
            return { stagedPath: same.path, sha256: same.sha256, bytesSent: 0, uploadSkipped: true, verification: 'sha256', hashTool: same.tool, resumedFrom: [], seconds: (Date.now() - started) / 1000, uploadSeconds: 0 };
          }
          checked = true;
        }
        const from = await resumeOffset(conn, partial, opts.image, size);
        if (from > 0) {
          resumedFrom.push(from);
          reporter.info(`resuming ${partial} from ${formatBytes(from)} already on the server`);
        }
        const sent = await upload(conn, { ...opts, segmentBytes: Math.floor((opts.verifySegmentBytes ?? 64 * MiB) / MiB) * MiB, partial, size, from, progress });
        sha256 = sent.sha256;
        progress.stop();
        // Verified before the rename, so the staged name only ever holds a checked file.
        verified = await verify(conn, partial, size, sha256, reporter, opts.verify ?? 'sha256', sent.segments);
        await sftpCall((cb) => conn.sftp.ext_openssh_rename(partial, staged, cb)).catch((error) => {
          throw isNetworkError(error) ? error : remoteError(error, `renaming ${partial} to ${staged} (posix-rename@openssh.com)`);
        });
        break;
      } catch (error) {
        if (!isNetworkError(error) || resumes >= (opts.maxResumes ?? 5) || opts.signal?.aborted) {
          // A server-side failure (full disk, quota) would fail again: free the space rather than keep a partial.
          // Only under our lock: without it the partial may be another run's upload in progress.
          if (lock && !isNetworkError(error) && !opts.signal?.aborted && conn.isOpen()) await sftpCall((cb) => conn.sftp.unlink(partial, cb)).catch(() => undefined);
          throw remoteError(error, `uploading ${opts.image} to ${partial}`);
        }
        reporter.warning(`connection lost (${(error as Error).message}); reconnecting to resume (${resumes + 1}/${opts.maxResumes ?? 5})`);
        await conn.end().catch(() => undefined);
      }
    }
    const rate = progress.sent / MiB / Math.max(progress.seconds(), 0.001);
    reporter.info(
      `staged ${staged}: ${formatBytes(size)}, sha256 ${sha256}, ${formatBytes(progress.sent)} sent in ${formatDuration(progress.seconds())} (${rate.toFixed(1)} MiB/s)` +
        `${resumedFrom.length ? `, resumed ${resumedFrom.length} time(s)` : ''}; verified by ${describeVerification(verified)}`,
    );
    return { stagedPath: staged, sha256, bytesSent: progress.sent, uploadSkipped: false, ...verified, resumedFrom, seconds: (Date.now() - started) / 1000, uploadSeconds: progress.seconds() };
  } catch (error) {
    throw error instanceof SftpError || error instanceof HostKeyError ? error : remoteError(error, `staging ${opts.image} in ${opts.stagingDir}`);
  } finally {
    progress.stop();
    // Reconnecting if needed, so the staging lock (or a draft of it) does not linger until it goes stale.
    const reconnect = async () => {
      conn = await connectSftp(opts.target, { ...connectOpts, signal: undefined, retries: 1 });
    };
    const held = lock;
    await releaseLocks([lock], () => conn, reconnect);
    if (!held) await removeDrafts(lockDrafts(stagingLockPath(staged), lockToken), () => conn, reconnect, { locks: [stagingLockPath(staged)], token: lockToken, reporter });
    await conn.end().catch(() => undefined);
  }
}

/** The stage's facts for the job summary. */
export function stageSummary(result: StageResult): Summary {
  const rate = result.uploadSeconds > 0 ? `${(result.bytesSent / MiB / result.uploadSeconds).toFixed(1)} MiB/s` : '-';
  return {
    title: 'Stage',
    facts: [
      { label: 'Staged', value: result.stagedPath, code: true },
      { label: 'sha256', value: result.sha256, code: true },
      { label: 'Sent', value: result.uploadSkipped ? 'nothing (the server already has this image)' : `${formatBytes(result.bytesSent)} in ${formatDuration(result.uploadSeconds)} (${rate})` },
      { label: 'Resumed', value: result.resumedFrom.length ? result.resumedFrom.map((b) => formatBytes(b)).join(', ') : 'no' },
      { label: 'Verified by', value: result.verification === 'sha256' ? describeVerification(result) : 'size only (the account cannot run commands)' },
    ],
  };
}

/** mkdir -p over SFTP, with an error that names the directory. */
export async function ensureDir(conn: SftpConnection, dir: string): Promise<void> {
  const st = await sftpCall<SftpStats>((cb) => conn.sftp.stat(dir, cb)).catch((e) => e as Error);
  if (!(st instanceof Error)) {
    if (!st.isDirectory()) throw new SftpError(`${dir} exists on the server but is not a directory`);
    return;
  }
  if (sftpCode(st) !== 2) throw remoteError(st, `checking the directory ${dir}`);
  const parent = dir.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/';
  if (parent !== dir) await ensureDir(conn, parent);
  await sftpCall((cb) => conn.sftp.mkdir(dir, cb)).catch(async (error) => {
    const again = await sftpCall<SftpStats>((cb) => conn.sftp.stat(dir, cb)).catch(() => undefined);
    if (again?.isDirectory()) return; // created concurrently
    throw remoteError(error, `creating the directory ${dir} (it did not exist)`);
  });
}

async function findIdentical(conn: SftpConnection, image: string, size: number, candidates: string[], reporter: Reporter): Promise<{ path: string; sha256: string; tool?: HashTool } | undefined> {
  const sameSize: string[] = [];
  for (const path of candidates) {
    const st = await sftpCall<SftpStats>((cb) => conn.sftp.stat(path, cb)).catch(() => undefined);
    if (st?.isFile() && st.size === size) sameSize.push(path);
  }
  if (sameSize.length === 0) return undefined;
  const localHash = sha256File(image);
  for (const path of sameSize) {
    const remote = await remoteSha256(conn, path, size);
    if ('refused' in remote) {
      reporter.info(`${path} has the same size, but its sha256 cannot be computed remotely (${remote.refused}); uploading anyway`);
      return undefined;
    }
    if (remote.sha256 === (await localHash)) return { path, sha256: remote.sha256, tool: remote.tool };
  }
  await localHash.catch(() => undefined);
  return undefined;
}

/** Where to continue: the partial's size when its tail matches the local file, otherwise 0. */
async function resumeOffset(conn: SftpConnection, partial: string, image: string, size: number): Promise<number> {
  const st = await sftpCall<SftpStats>((cb) => conn.sftp.stat(partial, cb)).catch(() => undefined);
  if (!st?.isFile() || st.size === 0 || st.size > size) return 0;
  // A partial left by another image of the same name must not be continued: compare its last bytes.
  const len = Math.min(st.size, 256 * 1024);
  const pos = st.size - len;
  const remote = Buffer.alloc(len);
  const handle = await sftpCall<Buffer>((cb) => conn.sftp.open(partial, 'r', cb));
  try {
    for (let got = 0; got < len; ) {
      const n = await sftpCall<number>((cb) => conn.sftp.read(handle, remote, got, len - got, pos + got, (err, bytes) => cb(err, bytes)));
      if (!n) return 0;
      got += n;
    }
  } finally {
    await sftpCall((cb) => conn.sftp.close(handle, cb)).catch(() => undefined);
  }
  const fh = await open(image, 'r');
  try {
    const mine = Buffer.alloc(len);
    await fh.read(mine, 0, len, pos);
    return mine.equals(remote) ? st.size : 0;
  } finally {
    await fh.close();
  }
}

interface UploadOptions extends StageOptions {
  /** Segment size for remote hashing while uploading; 0 turns it off. */
  segmentBytes: number;
  partial: string;
  size: number;
  from: number;
  progress: Progress;
}

/**
 * Sends [from, size) of the image with many write requests in flight and returns the sha256 of the whole file.
 * Reads are sequential and each block is hashed before its writes go out, so the hash needs no second pass; the
 * prefix already on the server is re-hashed from the local file. Writes go out in offset order and OpenSSH applies
 * them in order, so after a cut the server's file size is a correct prefix to resume from.
 */
async function upload(conn: SftpConnection, o: UploadOptions): Promise<{ sha256: string; segments?: SegmentVerifier }> {
  const sftp = conn.sftp;
  // ssh2 splits a write larger than the server's limit (from OpenSSH's limits@openssh.com, else 34000 bytes) into
  // consecutive requests, in offset order, so the chunk need not know the limit.
  const chunk = Math.max(1024, o.chunkSize ?? 64 * 1024);
  const maxInFlight = o.requests ?? 64;
  const block = chunk * 16;
  const hash = createHash('sha256');
  const fh = await open(o.image, 'r');
  let handle: Buffer | undefined;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onClose = () => {
    failure ??= new SftpError('the connection closed', 'network');
    poke();
  };
  void conn.closed.then(onClose);
  const onAbort = () => {
    failure ??= new SftpError('cancelled');
    poke();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  // Contiguous acknowledged prefix: OpenSSH answers in order, but tracking it keeps this right for any server.
  let ackedThrough = o.from;
  const pendingWrites: { end: number; done: boolean }[] = [];
  const ackWaiters: { end: number; resolve: () => void }[] = [];
  const settle = () => {
    while (pendingWrites.length > 0 && pendingWrites[0].done) ackedThrough = pendingWrites.shift()!.end;
    for (let i = ackWaiters.length - 1; i >= 0; i--) {
      if (ackWaiters[i].end <= ackedThrough) ackWaiters.splice(i, 1)[0].resolve();
    }
  };
  const sentBefore = o.progress.sent;
  const startedAt = Date.now();
  const maxRate = o.segmentMaxRate ?? 100 * MiB;
  const segments = o.segmentBytes > 0 && o.size > o.segmentBytes
    ? new SegmentVerifier(
        conn,
        o.partial,
        o.segmentBytes,
        (end) => (end <= ackedThrough ? Promise.resolve() : new Promise<void>((resolve) => ackWaiters.push({ end, resolve }))),
        () => {
          // Acknowledged bytes over time; at the first boundary a segment's worth has been read, so most of it is sent.
          const sent = o.progress.sent - sentBefore;
          const rate = sent / Math.max((Date.now() - startedAt) / 1000, 0.001);
          return sent > 0 && rate > maxRate ? `the upload runs at ${(rate / MiB).toFixed(0)} MiB/s, faster than segment hashing pays off` : undefined;
        },
      )
    : undefined;
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (let p = 0; p < o.from; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, o.from - p), p);
      if (bytesRead === 0) throw new SftpError('the image changed size while it was being read', 'config');
      hash.update(buf.subarray(0, bytesRead));
      segments?.update(buf.subarray(0, bytesRead));
      p += bytesRead;
    }
    handle = await sftpCall<Buffer>((cb) => sftp.open(o.partial, o.from > 0 ? 'r+' : 'w', { mode: 0o644 }, cb)).catch((error) => {
      throw remoteError(error, `opening ${o.partial} for writing`);
    });
    o.progress.start(o.from);
    let inFlight = 0;
    let pos = o.from;
    const read = (at: number) => {
      const buf = Buffer.allocUnsafe(Math.min(block, o.size - at));
      return fh.read(buf, 0, buf.length, at);
    };
    let next = pos < o.size ? read(pos) : undefined;
    while (next) {
      const { bytesRead, buffer } = await next;
      if (bytesRead !== buffer.length) throw new SftpError(`the image ${o.image} changed while it was being uploaded`, 'config');
      const at = pos;
      pos += bytesRead;
      next = pos < o.size ? read(pos) : undefined;
      hash.update(buffer);
      segments?.update(buffer);
      for (let off = 0; off < bytesRead; off += chunk) {
        while (inFlight >= maxInFlight && !failure) await new Promise<void>((r) => (wake = r));
        if (failure) throw failure;
        const len = Math.min(chunk, bytesRead - off);
        inFlight++;
        const pending = { end: at + off + len, done: false };
        pendingWrites.push(pending);
        sftp.write(handle, buffer, off, len, at + off, (err) => {
          inFlight--;
          if (err) failure ??= err;
          else {
            o.progress.add(len);
            pending.done = true;
            settle();
          }
          poke();
        });
      }
    }
    while (inFlight > 0 && !failure) await new Promise<void>((r) => (wake = r));
    if (failure) throw failure;
    const h = handle;
    handle = undefined;
    await sftpCall((cb) => sftp.close(h, cb)).catch((error) => {
      throw remoteError(error, `closing ${o.partial}`);
    });
    segments?.finish();
    return { sha256: hash.digest('hex'), segments };
  } catch (error) {
    segments?.abandon();
    throw isNetworkError(error) ? error : remoteError(error, `writing ${o.partial}`);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    await fh.close();
    if (handle && conn.isOpen()) sftp.close(handle, () => undefined);
  }
}

/** Checks the partial before it is renamed: a remote sha256 where the account may run commands, its size otherwise. */
async function verify(
  conn: SftpConnection,
  partial: string,
  size: number,
  sha256: string,
  reporter: Reporter,
  mode: VerifyMode,
  segments?: SegmentVerifier,
): Promise<Pick<StageResult, 'verification' | 'hashTool'>> {
  if (segments) {
    const outcome = await segments.outcome();
    if (outcome.ok) {
      reporter.info(`remote sha256 (${outcome.tool}) of ${outcome.count} segments, computed while uploading, matches the image`);
      return { verification: 'sha256', hashTool: outcome.tool };
    }
    if (outcome.stopped) reporter.info(`segment hashing stopped (${outcome.stopped}); hashing the whole file on the server once`);
    // Not a verdict: a segment may have failed for a benign reason (no dd, a busy server). The whole file decides.
    else if (outcome.reason) reporter.info(`segment verification inconclusive (${outcome.reason}); hashing the whole file on the server`);
  }
  const remote = await remoteSha256(conn, partial, size);
  if ('sha256' in remote) {
    if (remote.sha256 !== sha256) {
      await sftpCall((cb) => conn.sftp.unlink(partial, cb)).catch(() => undefined);
      throw new SftpError(`verification failed: the server's sha256 of ${partial} is ${remote.sha256}, the image's is ${sha256}; the partial file was removed, run again`);
    }
    return { verification: 'sha256', hashTool: remote.tool };
  }
  const st = await sftpCall<SftpStats>((cb) => conn.sftp.stat(partial, cb)).catch((error) => {
    throw remoteError(error, `checking ${partial}`);
  });
  if (st.size !== size) throw new SftpError(`verification failed: ${partial} holds ${st.size} bytes, the image has ${size}`);
  if (mode !== 'size') throw new SftpError(cannotHashMessage(partial, remote.refused), 'config');
  reporter.info(`remote hashing is not available (${remote.refused}); verified by size only (${size} bytes), as verify: size allows`);
  return { verification: 'size' };
}

/** Progress lines every few seconds: bytes, percent, MiB/s, ETA. */
class Progress {
  sent = 0;
  private done = 0;
  private startedAt = 0;
  private firstStart = 0;
  private timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly reporter: Reporter,
    private readonly total: number,
    private readonly intervalMs: number,
  ) {}

  start(from: number): void {
    this.done = from;
    this.startedAt = Date.now();
    this.firstStart ||= this.startedAt;
    this.sentAtStart = this.sent;
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => this.line(), this.intervalMs);
      this.timer.unref();
    }
  }

  private sentAtStart = 0;

  add(bytes: number): void {
    this.sent += bytes;
    this.done += bytes;
  }

  /** Seconds spent uploading (from the first write to the end of the last attempt). */
  seconds(): number {
    return this.firstStart ? ((this.stoppedAt ?? Date.now()) - this.firstStart) / 1000 : 0;
  }

  private stoppedAt?: number;

  private line(): void {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = (this.sent - this.sentAtStart) / Math.max(elapsed, 0.001);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const pct = this.total ? (100 * this.done) / this.total : 100;
    this.reporter.info(
      `uploaded ${formatBytes(this.done)} of ${formatBytes(this.total)} (${pct.toFixed(1)}%), ${(rate / MiB).toFixed(1)} MiB/s, ETA ${Number.isFinite(eta) ? formatDuration(eta) : 'unknown'}`,
    );
  }

  stop(): void {
    this.stoppedAt ??= Date.now();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Hashes the upload in segments on both sides: locally from the same buffers as the whole-file hash, remotely with
 * `dd | openssl dgst` once a segment's writes are all acknowledged, one remote command at a time.
 */
class SegmentVerifier {
  private hash = createHash('sha256');
  private start = 0;
  private pos = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly results: Promise<string | undefined>[] = [];
  private abandoned = false;
  /** Why segment hashing was given up midway, when it was. */
  private stopped?: string;
  private tool: HashTool = 'sha256sum';

  constructor(
    private readonly conn: SftpConnection,
    private readonly path: string,
    private readonly segmentBytes: number,
    private readonly acked: (end: number) => Promise<void>,
    /** Asked at each segment boundary: a reason to stop hashing in segments, or undefined to go on. */
    private readonly stopReason: () => string | undefined = () => undefined,
  ) {}

  update(buf: Buffer): void {
    if (this.stopped) return;
    for (let off = 0; off < buf.length; ) {
      const take = Math.min(buf.length - off, this.start + this.segmentBytes - this.pos);
      this.hash.update(buf.subarray(off, off + take));
      off += take;
      this.pos += take;
      if (this.pos === this.start + this.segmentBytes) {
        this.close();
        this.stopped = this.stopReason();
        if (this.stopped) {
          this.abandoned = true; // segments not yet hashed on the server are no longer needed
          return;
        }
      }
    }
  }

  finish(): void {
    if (!this.stopped) this.close();
  }

  abandon(): void {
    this.abandoned = true;
  }

  async outcome(): Promise<{ ok: boolean; count: number; tool: HashTool; reason?: string; stopped?: string }> {
    const problems = (await Promise.all(this.results)).filter((r) => r !== undefined);
    const ok = problems.length === 0 && this.results.length > 0 && !this.stopped;
    return { ok, count: this.results.length, tool: this.tool, reason: problems[0], stopped: this.stopped };
  }

  private close(): void {
    const start = this.start;
    const end = this.pos;
    if (end === start) return;
    const local = this.hash.digest('hex');
    this.hash = createHash('sha256');
    this.start = end;
    const block = MiB;
    const command = viaSh(`dd if=${shellQuote(this.path)} bs=${block} skip=${start / block} count=${Math.ceil((end - start) / block)} 2>/dev/null | ${HASH_STDIN}`);
    const result = this.chain.then(async () => {
      if (this.abandoned) return 'abandoned';
      await this.acked(end);
      if (this.abandoned) return 'abandoned';
      const hashed = await execHash(this.conn, command, hashTimeoutMs(end - start));
      if ('refused' in hashed) return `segment ${start}-${end}: ${hashed.refused}`;
      this.tool = hashed.tool;
      return hashed.sha256 === local ? undefined : `segment ${start}-${end} differs`;
    }).catch((error: unknown) => `segment ${start}-${end}: ${(error as Error).message}`);
    this.chain = result;
    this.results.push(result);
  }
}
