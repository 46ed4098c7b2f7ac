// What of the image the server already holds in the partial file, and the record that keeps it across cuts.
// Two ways a partial can have been written: by one channel in offset order (OpenSSH applies one session's writes in
// order, so the file's size is a correct prefix), or by several channels at once, whose confirmed ranges are listed
// in `.NAME.partial.ranges`. The record is created before any striped write, so a partial with holes always has one;
// and it only ever lists writes the server acknowledged. A torn, foreign or inconsistent record trusts nothing.
import { open } from 'node:fs/promises';
import type { SFTPWrapper, Stats as SftpStats } from 'ssh2';
import { isNetworkError, type SftpConnection } from './connect.js';
import { decodeRanges, encodeRanges, RangeMap, type Range } from './ranges.js';
import { remoteError, sftpCall, sftpCode } from './remote.js';

/** The record of confirmed ranges beside a partial file. */
export function rangesPath(partial: string): string {
  return `${partial}.ranges`;
}

export interface OnServer {
  map: RangeMap;
  /** Whether the partial has a ranges record (it was, or is being, written by several channels). */
  recorded: boolean;
}

/** What of the image is in the partial: ranges that are both confirmed and hold the image's bytes at their ends. */
export async function onServer(conn: SftpConnection, partial: string, image: string, size: number): Promise<OnServer> {
  const sftp = conn.sftp;
  // Both asked at once: one round trip.
  const [st, record] = await Promise.all([
    sftpCall<SftpStats>((cb) => sftp.stat(partial, cb)).catch(() => undefined),
    readSmall(sftp, rangesPath(partial)),
  ]);
  const empty = new RangeMap();
  if (record === undefined) {
    if (!st?.isFile() || st.size === 0 || st.size > size) return { map: empty, recorded: false };
    const map = new RangeMap([{ start: 0, end: st.size }]);
    return { map: (await tailsMatch(sftp, partial, image, map.ranges)) ? map : empty, recorded: false };
  }
  const map = decodeRanges(record, size);
  if (!map || !st?.isFile() || map.ranges.some((r) => r.end > st.size)) return { map: empty, recorded: true };
  return { map: (await tailsMatch(sftp, partial, image, map.ranges)) ? map : empty, recorded: true };
}

/** Reads a small remote file whole; undefined when it does not exist. */
async function readSmall(sftp: SFTPWrapper, path: string): Promise<Buffer | undefined> {
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb)).catch((error) => {
    if (sftpCode(error) === 2) return undefined;
    throw error;
  });
  if (!handle) return undefined;
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = await sftpCall<number>((cb) => sftp.read(handle, buf, 0, buf.length, 0, (err, bytes) => cb(err, bytes)));
    return buf.subarray(0, n);
  } catch (error) {
    if (sftpCode(error) === 1) return Buffer.alloc(0); // end of file: empty
    throw error;
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/**
 * A partial left by another image of the same name must not be continued: the last bytes of each range (up to 64
 * KiB, the eight longest ranges; all read at once) are compared with the image. The server's sha256 of the whole
 * file after the upload is the backstop.
 */
async function tailsMatch(sftp: SFTPWrapper, partial: string, image: string, ranges: readonly Range[]): Promise<boolean> {
  const checked = [...ranges].sort((a, b) => b.end - b.start - (a.end - a.start)).slice(0, 8);
  const handle = await sftpCall<Buffer>((cb) => sftp.open(partial, 'r', cb));
  const fh = await open(image, 'r');
  try {
    const same = await Promise.all(
      checked.map(async (r) => {
        const len = Math.min(r.end - r.start, 64 * 1024);
        const pos = r.end - len;
        const remote = Buffer.alloc(len);
        for (let got = 0; got < len; ) {
          const n = await sftpCall<number>((cb) => sftp.read(handle, remote, got, len - got, pos + got, (err, bytes) => cb(err, bytes))).catch(() => 0);
          if (!n) return false;
          got += n;
        }
        const mine = Buffer.alloc(len);
        await fh.read(mine, 0, len, pos);
        return mine.equals(remote);
      }),
    );
    return same.every(Boolean);
  } finally {
    await fh.close();
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/**
 * The ranges record of a striped upload, rewritten in place as writes are acknowledged: one SFTP write of the whole
 * record at offset 0 (applied whole by the server; its header carries the body's length and sha256, so a shorter
 * record over a longer one, or a torn one, is read right or not at all). At most one write in flight.
 */
export class RangeRecord {
  private writing?: Promise<void>;
  private dirty = false;
  private failure?: Error;
  private finished = false;

  private constructor(
    private readonly sftp: SFTPWrapper,
    private readonly handle: Buffer,
    private readonly size: number,
    private readonly map: RangeMap,
  ) {}

  /**
   * Opens (or creates) the record and writes `map` to it before any striped write goes out. A new record for an
   * upload with nothing confirmed is not waited for: until its first write lands it is empty, which trusts nothing,
   * as a record of no ranges would.
   */
  static async create(sftp: SFTPWrapper, partial: string, size: number, map: RangeMap, exists: boolean): Promise<RangeRecord> {
    const path = rangesPath(partial);
    const handle = await sftpCall<Buffer>((cb) => sftp.open(path, exists ? 'r+' : 'w', { mode: 0o644 }, cb)).catch((error) => {
      throw remoteError(error, `opening ${path}`);
    });
    const record = new RangeRecord(sftp, handle, size, map);
    if (exists || map.total > 0) await record.flush();
    else record.update();
    return record;
  }

  /** Writes the current ranges soon (coalescing requests while a write is in flight). */
  update(): void {
    if (this.finished) return;
    if (this.writing) this.dirty = true;
    else void this.flush().catch(() => undefined);
  }

  /** Writes the current ranges and waits for the server's answer. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    const data = encodeRanges(this.size, this.map);
    this.writing = sftpCall((cb) => this.sftp.write(this.handle, data, 0, data.length, 0, cb));
    try {
      await this.writing;
    } catch (error) {
      this.failure ??= error as Error;
      throw error;
    } finally {
      this.writing = undefined;
    }
    if (this.dirty) {
      this.dirty = false;
      this.update();
    }
  }

  /**
   * The last write and the close, sent at once without waiting for a write in flight (one session's requests are
   * applied in order, so the last write is the one that stays): one round trip.
   */
  async finish(): Promise<void> {
    this.finished = true;
    const data = encodeRanges(this.size, this.map);
    const [written, closed] = await Promise.allSettled([
      sftpCall((cb) => this.sftp.write(this.handle, data, 0, data.length, 0, cb)),
      sftpCall((cb) => this.sftp.close(this.handle, cb)),
    ]);
    if (written.status === 'rejected') throw written.reason;
    if (closed.status === 'rejected' && isNetworkError(closed.reason)) throw closed.reason;
  }

  async close(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    while (this.writing) await this.writing.catch(() => undefined);
    await sftpCall((cb) => this.sftp.close(this.handle, cb)).catch(() => undefined);
    if (this.failure) throw this.failure;
  }
}
