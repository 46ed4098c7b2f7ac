// One attempt at sending what the server lacks: the partial opened on every channel, the missing ranges queued as
// pieces the channels share, the ranges record kept current for a striped upload, and the image's sha256 computed by one sequential
// read of its own on a worker thread (the channels read the file out of order), which also hashes the verification's segments.
import { open, type FileHandle } from 'node:fs/promises';
import type { SFTPWrapper } from 'ssh2';
import { isNetworkError, type SftpConnection } from './connect.js';
import { hashImage, type ImageHashing } from './image-hash.js';
import type { Channels } from './channels.js';
import type { Progress } from './progress.js';
import { PieceQueue, type RangeMap } from './ranges.js';
import { remoteError, sftpCall } from './remote.js';
import { RangeRecord } from './resume.js';
import { Coverage, SegmentVerifier } from './segments.js';
import { writePieces } from './writer.js';

const MiB = 1024 * 1024;
/** SSH_FXF_WRITE | SSH_FXF_CREAT (SFTP v3 open flags): for writing, created if missing, never truncated. */
const WRITE_CREATE = 0x02 | 0x08;
const RECORD_EVERY = MiB;

export interface TransferOptions {
  conn: SftpConnection;
  channels: Channels;
  image: string;
  partial: string;
  size: number;
  /** What the server holds already. */
  onServer: RangeMap;
  /** Keep a ranges record: the upload is striped, or an earlier striped attempt left one. */
  recorded: boolean;
  chunk: number;
  requests: number;
  progress: Progress;
  /** Segment size for remote hashing while uploading; 0 turns it off. */
  segmentBytes: number;
  segmentMaxRate: number;
  signal?: AbortSignal;
  /** The last piece is being sent: what remains is the answers, the closes and the verification. */
  onLastPiece?: () => void;
}

export interface Transferred {
  sha256: string;
  segments?: SegmentVerifier;
  /** Whether a ranges record is beside the partial (to remove once the file is verified). */
  recorded: boolean;
}

export async function transfer(o: TransferOptions): Promise<Transferred> {
  const queue = new PieceQueue(o.onServer.gaps(o.size));
  queue.onDrained = o.onLastPiece;
  const used = Math.max(1, Math.min(o.channels.sftps.length, queue.remaining));
  queue.sharedBy = used;
  const recorded = o.recorded || used > 1;
  const coverage = new Coverage(o.onServer);
  const segments = o.segmentBytes > 0 && o.size > o.segmentBytes ? newSegments(o, coverage) : undefined;
  const fh = await open(o.image, 'r');
  const handles: { sftp: SFTPWrapper; handle: Buffer }[] = [];
  let record: RangeRecord | undefined;
  let flusher: ReturnType<typeof setInterval> | undefined;
  let hashing: ImageHashing | undefined;
  try {
    // The record exists, listing only what is confirmed, before any striped write goes out; the partial is opened
    // on every channel meanwhile.
    const recordReady = recorded ? RangeRecord.create(o.conn.sftp, o.partial, o.size, coverage.map, o.recorded) : Promise.resolve(undefined);
    const opened = await Promise.allSettled([recordReady, openPartial(o, used, o.onServer.total > 0)]);
    if (opened[0].status === 'fulfilled') record = opened[0].value;
    if (opened[1].status === 'fulfilled') handles.push(...opened[1].value);
    for (const r of opened) if (r.status === 'rejected') throw r.reason;
    o.progress.start(o.onServer.total, used);
    hashing = hashImage(o.image, o.size, segments?.ends() ?? [], (start, end, sha256) => segments?.hashed(start, end, sha256));
    if (record) {
      const r = record;
      flusher = setInterval(() => r.update(), 1000);
      flusher.unref();
    }
    await writePiecesOf(o, fh, queue, handles, coverage, record);
    const sha256 = await hashing.sha256;
    if (flusher) clearInterval(flusher);
    // All of it confirmed (sent with the closes, the record's own included: one round trip): a cut during
    // verification resumes with nothing to send.
    await Promise.all([closeAll(handles.splice(0), o.partial), record?.finish()]);
    return { sha256, segments, recorded };
  } catch (error) {
    segments?.abandon();
    throw isNetworkError(error) ? error : remoteError(error, `writing ${o.partial}`);
  } finally {
    hashing?.stop();
    if (flusher) clearInterval(flusher);
    coverage.end();
    await fh.close();
    if (o.conn.isOpen()) for (const h of handles) h.sftp.close(h.handle, () => undefined);
    await record?.close().catch(() => undefined);
  }
}

function newSegments(o: TransferOptions, coverage: Coverage): SegmentVerifier {
  const startedAt = Date.now();
  const sentBefore = o.progress.sent;
  return new SegmentVerifier(o.conn, o.partial, {
    size: o.size,
    segmentBytes: o.segmentBytes,
    coverage,
    stopReason: () => {
      // Acknowledged bytes over time when the first segment is on the server.
      const sent = o.progress.sent - sentBefore;
      const rate = sent / Math.max((Date.now() - startedAt) / 1000, 0.001);
      return sent > 0 && rate > o.segmentMaxRate ? `the upload runs at ${(rate / MiB).toFixed(0)} MiB/s, faster than segment hashing pays off` : undefined;
    },
    // Two commands at once beside up to 8 channels of this connection, one beside 9 (MaxSessions 10).
    lanes: Math.min(2, 10 - sessionsOn(o.channels)),
  });
}

/** The SFTP sessions the upload holds on its first connection. */
function sessionsOn(channels: Channels): number {
  return channels.sftps.length - channels.extra.length;
}

/**
 * Opens the partial on each channel, all at once: created (or truncated) on the first channel when nothing of it is
 * kept, opened for writing in place (created if the first channel's open has not yet) on the others. Nothing is
 * written before every open is answered, so the truncation cannot meet a write, whichever open the server does first.
 */
async function openPartial(o: TransferOptions, count: number, keep: boolean): Promise<{ sftp: SFTPWrapper; handle: Buffer }[]> {
  const inPlace = keep ? 'r+' : WRITE_CREATE;
  const openOn = (sftp: SFTPWrapper, flags: 'w' | 'r+' | number) =>
    sftpCall<Buffer>((cb) => sftp.open(o.partial, flags, { mode: 0o644 }, cb))
      .then((handle) => ({ sftp, handle }))
      .catch((error) => {
        throw isNetworkError(error) ? error : remoteError(error, `opening ${o.partial} for writing`);
      });
  const sftps = o.channels.sftps.slice(0, Math.max(1, count));
  const all = await Promise.allSettled(sftps.map((s, i) => openOn(s, i === 0 && !keep ? 'w' : inPlace)));
  const opened = all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = all.find((r) => r.status === 'rejected');
  if (failed) {
    for (const h of opened) h.sftp.close(h.handle, () => undefined);
    throw (failed as PromiseRejectedResult).reason;
  }
  return opened;
}

async function writePiecesOf(
  o: TransferOptions,
  fh: FileHandle,
  queue: PieceQueue,
  handles: { sftp: SFTPWrapper; handle: Buffer }[],
  coverage: Coverage,
  record?: RangeRecord,
): Promise<void> {
  // The record is rewritten every second (a timer) and after every RECORD_EVERY bytes confirmed, so a cut loses
  // little even on a fast link.
  let since = 0;
  await writePieces({
    fh,
    image: o.image,
    channels: handles,
    queue,
    chunk: o.chunk,
    requests: o.requests,
    closed: o.channels.closed,
    signal: o.signal,
    onWritten: (channel, start, end) => {
      coverage.add(start, end);
      o.progress.add(end - start, channel);
      since += end - start;
      if (record && since >= RECORD_EVERY) {
        since = 0;
        record.update();
      }
    },
  });
}

async function closeAll(handles: { sftp: SFTPWrapper; handle: Buffer }[], partial: string): Promise<void> {
  await Promise.all(
    handles.map((h) =>
      sftpCall((cb) => h.sftp.close(h.handle, cb)).catch((error) => {
        throw isNetworkError(error) ? error : remoteError(error, `closing ${partial}`);
      }),
    ),
  );
}
