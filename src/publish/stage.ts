// Stage: uploads the image next to (never onto) the live path, then verification and an atomic rename of
// `.NAME.partial` to `NAME` in the staging dir. This module orchestrates: connecting, the lock, the comparison with
// the server's copies, resuming from what the server holds after a dropped connection; the parts live beside it
// (channels.ts: how many SFTP channels and opening them; resume.ts: what is on the server; transfer.ts and
// writer.ts: sending; segments.ts and verify.ts: checking; progress.ts: the progress lines).
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration, type Summary } from '../report/summary.js';
import { sha256File } from '../util/hash.js';
import { isPlainFileName } from '../util/paths.js';
import { chooseChannels, measureRtt, openChannels, requestsInFlight, type ChannelChoice, type Channels, type ChannelSetting } from './channels.js';
import { connectSftp, HostKeyError, isNetworkError, SftpError, type ConnectOptions, type SftpConnection, type SftpTarget } from './connect.js';
import { acquireLock, DEFAULT_LOCK_STALE_MS, lockDrafts, releaseLocks, removeDrafts, type RemoteLock } from './lock.js';
import { phaseClock, Progress, type StagePhase } from './progress.js';
import { remoteError, remoteJoin, sftpCall, sftpCode } from './remote.js';
import { remoteSha256, type HashTool, type VerifyMode } from './remote-hash.js';
import { onServer, rangesPath, type OnServer } from './resume.js';
import { transfer } from './transfer.js';
import { verifyPartial, type Verified } from './verify.js';

export type { HashTool } from './remote-hash.js';
export type { StagePhase } from './progress.js';

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
  /**
   * Bytes per SFTP write request (capped by the server's limits@openssh.com). Default: 128 KiB on a short link (round
   * trip under 20 ms), where the CPU is the limit and half the requests and answers for the same bytes in flight pay
   * (1 GiB on loopback: 4.2–4.3 s against 4.8–5.6 s); 64 KiB on a long one, where a window's worth in smaller requests
   * keeps it fuller (128 MiB at 100 ms: upload 1.7 s against 2.1 s).
   */
  chunkSize?: number;
  /** SFTP write requests in flight per channel. Default: from the round trip (`requestsInFlight`), half a window's worth to a whole one. */
  requests?: number;
  /** SFTP channels to write over (`sftp-channels`): `auto` (default) chooses from the measured round trip. */
  channels?: ChannelSetting;
  /**
   * While uploading, the server hashes each completed segment of this many bytes (Python, or `dd | openssl dgst`, over SSH exec),
   * so verification overlaps the transfer instead of re-reading the whole file afterwards. Default 64 MiB; 0: off.
   */
  verifySegmentBytes?: number;
  /**
   * Segment hashing stops (and the whole file is hashed once at the end) when the upload runs faster than this many
   * bytes per second on a short link (round trip under 20 ms): then the link is not the bottleneck, and hashing every
   * byte a second time on the runner, plus reading it back on the server, slows the transfer more than one pass
   * afterwards costs. Default 100 MiB/s; Infinity: always hash in segments. A long link always hashes in segments.
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
  /** Told the seconds each phase of the stage took, as it ends (the upload benchmark's breakdown). */
  onPhase?: (phase: StagePhase, seconds: number) => void;
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
  /** Bytes already on the server each time the upload resumed after a dropped connection (or from an earlier run's partial). */
  resumedFrom: number[];
  /** The image's size. */
  imageBytes: number;
  /** The round trip measured at connecting, in ms, and the channels written over (the last attempt's). */
  rttMs?: number;
  channels: number;
  /** Wall time of the whole stage, and of the upload alone (without connecting, verifying and renaming). */
  seconds: number;
  uploadSeconds: number;
}

const MiB = 1024 * 1024;
/** A round trip this long is not a LAN's, whatever the server's load: no second measurement needed. */
const LONG_LINK_MS = 20;

/** The lock that serialises stagers of one staged path (and a promotion checking that path). */
export function stagingLockPath(staged: string): string {
  const slash = staged.lastIndexOf('/');
  return `${staged.slice(0, slash + 1)}.${staged.slice(slash + 1)}.partial.lock`;
}

export function describeVerification(result: Pick<StageResult, 'verification' | 'hashTool'>): string {
  return result.verification === 'sha256' ? `remote sha256 (${result.hashTool ?? 'sha256sum'})` : 'size only';
}

/** What the attempts of one stage share: the connection (replaced after a cut), the lock, what was learnt. */
interface StageState {
  opts: StageOptions;
  connectOpts: ConnectOptions;
  conn: SftpConnection;
  /** The staging lock while held; `released` once given back with the rename. */
  lock?: RemoteLock | 'released';
  lockToken: string;
  progress: Progress;
  size: number;
  paths: { partial: string; staged: string; live?: string };
  checked: boolean;
  resumedFrom: number[];
  rttMs?: number;
  channels: number;
  sha256: string;
  verified: Verified;
  started: number;
  /** Ends a phase: tells `onPhase` the seconds since the last one ended (less `less` seconds counted elsewhere). */
  phase(name: StagePhase, less?: number): void;
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
  const paths = {
    partial: remoteJoin(opts.stagingDir, `.${opts.remoteName}.partial`),
    staged: remoteJoin(opts.stagingDir, opts.remoteName),
    live: opts.liveDir ? remoteJoin(opts.liveDir, opts.remoteName) : undefined,
  };
  const connectOpts: ConnectOptions = { retryDelayMs: 1000, ...opts.connect, reporter, signal: opts.signal };
  const phase = phaseClock(opts.onPhase);
  const progress = new Progress(reporter, size, opts.progressIntervalMs ?? 5000);
  const conn = await connectSftp(opts.target, { ...connectOpts, sessions: (rttMs) => sessionsFor(opts, size, progress, rttMs) });
  phase('connect');
  reporter.info(`connected to ${opts.target.username}@${opts.target.host}:${opts.target.port} (host key ${conn.hostKey.keyType} ${conn.hostKey.fingerprint}, trusted by ${conn.hostKey.via})`);
  const st: StageState = {
    opts,
    connectOpts,
    conn,
    // One token for every attempt at the lock, so a lock created by an attempt whose answer was lost is ours.
    lockToken: randomBytes(12).toString('hex'),
    progress,
    size,
    paths,
    checked: false,
    resumedFrom: [],
    channels: 1,
    sha256: '',
    verified: { verification: 'size' },
    started,
    phase,
  };
  const { partial, staged } = paths;
  try {
    // Every step after connecting is inside the loop: a connection dropped while preparing (creating the
    // directory, taking the lock, comparing with the server's copies) is survived like one dropped while sending.
    for (let resumes = 0; ; resumes++) {
      try {
        const skipped = await attempt(st, resumes);
        if (skipped) return skipped;
        break;
      } catch (error) {
        if (!isNetworkError(error) || resumes >= (opts.maxResumes ?? 5) || opts.signal?.aborted) {
          // A server-side failure (full disk, quota) would fail again: free the space rather than keep a partial.
          // Only under our lock: without it the partial may be another run's upload in progress.
          if (st.lock && !isNetworkError(error) && !opts.signal?.aborted && st.conn.isOpen()) await removePartial(st.conn, partial);
          throw remoteError(error, `uploading ${opts.image} to ${partial}`);
        }
        reporter.warning(`connection lost (${(error as Error).message}); reconnecting to resume (${resumes + 1}/${opts.maxResumes ?? 5})`);
        await st.conn.end().catch(() => undefined);
      }
    }
    const { progress, channels, rttMs, resumedFrom } = st;
    const rate = progress.sent / MiB / Math.max(progress.seconds(), 0.001);
    reporter.info(
      `staged ${staged}: ${formatBytes(size)}, sha256 ${st.sha256}, ${formatBytes(progress.sent)} sent in ${formatDuration(progress.seconds())} (${rate.toFixed(1)} MiB/s)` +
        ` over ${channels} SFTP channel(s)${rttMs !== undefined ? `, round trip ${rttMs.toFixed(1)} ms` : ''}` +
        `${resumedFrom.length ? `, resumed ${resumedFrom.length} time(s)` : ''}; verified by ${describeVerification(st.verified)}`,
    );
    return { stagedPath: staged, sha256: st.sha256, bytesSent: progress.sent, uploadSkipped: false, ...st.verified, resumedFrom, seconds: (Date.now() - started) / 1000, uploadSeconds: progress.seconds(), imageBytes: size, rttMs, channels };
  } catch (error) {
    throw error instanceof SftpError || error instanceof HostKeyError ? error : remoteError(error, `staging ${opts.image} in ${opts.stagingDir}`);
  } finally {
    st.progress.stop();
    // Reconnecting if needed, so the staging lock (or a draft of it) does not linger until it goes stale.
    const reconnect = async () => {
      st.conn = await connectSftp(opts.target, { ...connectOpts, signal: undefined, retries: 1 });
    };
    const held = st.lock;
    if (held !== 'released') await releaseLocks([held], () => st.conn, reconnect);
    if (!held) await removeDrafts(lockDrafts(stagingLockPath(staged), st.lockToken), () => st.conn, reconnect, { locks: [stagingLockPath(staged)], token: st.lockToken, reporter });
    // Not waited for: nothing depends on the server's side of the close.
    st.conn.end().catch(() => undefined);
    st.phase('release');
  }
}

/**
 * One attempt over one connection: the directory and the lock (once), the comparison with the server's copies
 * (once), then what the server lacks, verification and the rename. Returns a result when nothing needed sending.
 */
async function attempt(st: StageState, resumes: number): Promise<StageResult | undefined> {
  const { opts, size, paths, progress } = st;
  const { reporter } = opts;
  if (!st.conn.isOpen()) st.conn = await connectSftp(opts.target, { ...st.connectOpts, sessions: (rttMs) => sessionsFor(opts, size, progress, st.rttMs ?? rttMs) });
  const conn = st.conn;
  // On a long link the channels were opened with the connection; else they are opened (and a short link's round trip
  // measured) while the lock is taken and the server's copies compared, so they cost no round trips of their own.
  const channelsReady = openChannelsFor(conn, st.rttMs, progress, size, opts, () => connectSftp(opts.target, { ...st.connectOpts, retries: 0 }));
  channelsReady.catch(() => undefined);
  try {
    let asked: Asked | undefined;
    if (!st.lock) {
      // The directory's check and the first try at the lock go out together.
      const dirReady = ensureDir(conn, opts.stagingDir);
      dirReady.catch(() => undefined);
      // A failure of the directory's check is told as such (it rejects before the lock's try that waits for it).
      const [, lock] = await Promise.all([
        dirReady,
        acquireLock(() => st.conn, stagingLockPath(paths.staged), {
          dirReady,
          staleMs: opts.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
          waitTimeoutMs: opts.lockTimeoutMs,
          owner: opts.owner,
          runUrl: opts.runUrl,
          reporter,
          signal: opts.signal,
          token: st.lockToken,
          // The comparison's requests go with the lock's rename: one round trip fewer where that takes the lock.
          alongside: () => (asked = askServer(st, conn)),
        }),
      ]);
      st.lock = lock;
      if (!lock.takenFirst) asked = undefined;
    }
    asked ??= askServer(st, conn);
    if (!st.checked) {
      const same = await findIdentical(conn, opts.image, size, asked.candidates, await asked.stats, reporter);
      if (same) {
        reporter.info(`${same.path} already has sha256 ${same.sha256}: nothing sent`);
        const ready = await channelsReady.catch(() => undefined);
        return { stagedPath: same.path, sha256: same.sha256, bytesSent: 0, uploadSkipped: true, verification: 'sha256', hashTool: same.tool, resumedFrom: [], seconds: (Date.now() - st.started) / 1000, uploadSeconds: 0, imageBytes: size, rttMs: ready?.rttMs, channels: 0 };
      }
      st.checked = true;
    }
    const held = await asked.held;
    if (held.map.total > 0) {
      st.resumedFrom.push(held.map.total);
      const where = held.map.ranges.length === 1 && held.map.ranges[0].start === 0 ? `from ${formatBytes(held.map.total)}` : `with ${formatBytes(held.map.total)} in ${held.map.ranges.length} ranges`;
      reporter.info(`resuming ${paths.partial} ${where} already on the server`);
    }
    const { open, choice, rttMs } = await channelsReady;
    let confirming: Promise<void> | undefined;
    st.rttMs = rttMs;
    st.channels = open.sftps.length;
    if (resumes === 0 || st.channels > 1) reporter.info(`writing over ${st.channels} SFTP channel(s) (${choice.why})`);
    const chunk = Math.max(1024, opts.chunkSize ?? (rttMs >= LONG_LINK_MS ? 64 : 128) * 1024);
    const sent = await transfer({
      conn,
      channels: open,
      image: opts.image,
      partial: paths.partial,
      size,
      onServer: held.map,
      recorded: held.recorded,
      chunk,
      requests: opts.requests ?? requestsInFlight(rttMs, chunk),
      progress,
      segmentBytes: Math.floor((opts.verifySegmentBytes ?? 64 * MiB) / MiB) * MiB,
      // On a long link a pass over the whole file afterwards costs its hashing and round trips at the end, however fast
      // the channels together carry the upload: segments are hashed whatever the rate.
      segmentMaxRate: rttMs >= LONG_LINK_MS ? Infinity : (opts.segmentMaxRate ?? 100 * MiB),
      signal: opts.signal,
      // The lock is read while the last pieces go, so the release after the rename is one request.
      onLastPiece: () => {
        const lock = st.lock;
        if (lock && lock !== 'released') confirming = lock.confirm();
      },
    });
    // The other channels are not needed for verifying.
    await open.close();
    st.sha256 = sent.sha256;
    progress.stop();
    st.phase('prepare', progress.seconds());
    opts.onPhase?.('upload', progress.seconds());
    // Verified before the rename, so the staged name only ever holds a checked file.
    st.verified = await verifyPartial(conn, paths.partial, size, sent.sha256, reporter, opts.verify ?? 'sha256', sent.segments);
    st.phase('verify');
    await confirming;
    await finish(st, sent.recorded);
    st.phase('rename');
    return undefined;
  } finally {
    await channelsReady.then((c) => c.open.close(), () => undefined);
  }
}

/**
 * The verified partial becomes the staged file, and the staging lock is given back. Sent at once (one session's
 * requests are applied in order): the ranges record's removal, the rename (cut in between, the next attempt finds
 * the whole file as a prefix), then the lock's release, which therefore always follows the rename on the server.
 */
async function finish(st: StageState, recorded: boolean): Promise<void> {
  const { conn, paths } = st;
  const { partial, staged } = paths;
  const unlink = recorded ? sftpCall((cb) => conn.sftp.unlink(rangesPath(partial), cb)) : Promise.resolve();
  const rename = sftpCall((cb) => conn.sftp.ext_openssh_rename(partial, staged, cb));
  const lock = st.lock !== 'released' ? st.lock : undefined;
  const release = lock?.release();
  const [unlinked, renamed, released] = await Promise.allSettled([unlink, rename, release]);
  // Given back. After a cut the next attempt takes the lock again (same token) before anything else; a refused
  // rename leaves the verified partial, no longer ours to remove, for the next run to find whole.
  if (lock && released.status === 'fulfilled') st.lock = undefined;
  if (unlinked.status === 'rejected' && isNetworkError(unlinked.reason)) throw unlinked.reason;
  if (renamed.status === 'rejected') {
    throw isNetworkError(renamed.reason) ? renamed.reason : remoteError(renamed.reason, `renaming ${partial} to ${staged} (posix-rename@openssh.com)`);
  }
  if (lock && released.status === 'fulfilled') st.lock = 'released';
}

/** Chooses the channel count from the round trip (measured now, or on an earlier attempt) and opens the channels. */
function openChannelsFor(
  conn: SftpConnection,
  knownRtt: number | undefined,
  progress: Progress,
  size: number,
  opts: StageOptions,
  connect: () => Promise<SftpConnection>,
): Promise<{ open: Channels; choice: ChannelChoice; rttMs: number }> {
  return (async () => {
    // The quicker of authentication's and the session's opening (each an average over three exchanges, the server's
    // work included) when that is clearly a long link; else the quicker of it and one request now, so a loaded LAN
    // server is not taken for a distant one.
    const early = Math.min(conn.handshakeRttMs, conn.sessionRttMs);
    const rttMs = knownRtt ?? (early >= LONG_LINK_MS ? early : Math.min(early, await measureRtt(conn.sftp)));
    const choice = channelChoice(opts, size, progress, rttMs);
    return { open: await openChannels(conn, choice.channels, connect, opts.reporter), choice, rttMs };
  })();
}

function channelChoice(opts: StageOptions, size: number, progress: Progress, rttMs: number): ChannelChoice {
  // After a cut, the throughput of the attempts so far is a measure of the link.
  const linkBytesPerSecond = progress.sent > 8 * MiB ? progress.sent / progress.seconds() : undefined;
  return chooseChannels({ setting: opts.channels ?? 'auto', rttMs, linkBytesPerSecond, bytes: size, host: opts.target.host });
}

/**
 * The SFTP sessions a connection opens at once (`ConnectOptions.sessions`): on a long link, or with a fixed count,
 * the channels the upload will write over, so they open with the first instead of a round trip or three after it.
 */
function sessionsFor(opts: StageOptions, size: number, progress: Progress, rttMs: number): number {
  return (opts.channels ?? 'auto') !== 'auto' || rttMs >= LONG_LINK_MS ? channelChoice(opts, size, progress, rttMs).channels : 1;
}

async function removePartial(conn: SftpConnection, partial: string): Promise<void> {
  await Promise.all([partial, rangesPath(partial)].map((p) => sftpCall((cb) => conn.sftp.unlink(p, cb)).catch(() => undefined)));
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
      {
        label: 'Link',
        value: result.uploadSkipped
          ? `round trip ${result.rttMs?.toFixed(1) ?? '-'} ms`
          : `round trip ${result.rttMs?.toFixed(1) ?? '-'} ms, ${result.channels} SFTP channel(s), ${(result.imageBytes / MiB / Math.max(result.seconds, 0.001)).toFixed(1)} MiB/s effective (the whole stage: connecting, upload, verification)`,
      },
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

/** The requests the comparison with the server's copies starts with, all sent at once. */
interface Asked {
  /** The staged and the live path, compared with the image; `stats` are theirs (none once compared on an earlier attempt). */
  candidates: string[];
  stats: Promise<(SftpStats | undefined)[]>;
  /** What of the image the partial holds; unused when the server already has the image. */
  held: Promise<OnServer>;
}

function askServer(st: StageState, conn: SftpConnection): Asked {
  const { paths, opts, size } = st;
  const candidates = st.checked ? [] : [paths.staged, ...(paths.live ? [paths.live] : [])];
  const stats = Promise.all(candidates.map((path) => sftpCall<SftpStats>((cb) => conn.sftp.stat(path, cb)).catch(() => undefined)));
  // Only reads: where the lock turns out not to be taken, its answer is dropped and asked again once it is.
  const held = onServer(conn, paths.partial, opts.image, size);
  held.catch(() => undefined);
  return { candidates, stats, held };
}

async function findIdentical(conn: SftpConnection, image: string, size: number, candidates: string[], stats: (SftpStats | undefined)[], reporter: Reporter): Promise<{ path: string; sha256: string; tool?: HashTool } | undefined> {
  const sameSize = candidates.filter((_, i) => stats[i]?.isFile() && stats[i].size === size);
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
