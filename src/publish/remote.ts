// Small promise wrappers over ssh2's SFTP calls, and SFTP status codes turned into messages a user can act on.
import type { FileEntryWithStats } from 'ssh2';
import { SftpError, isNetworkError, type SftpConnection } from './connect.js';

/** Calls an ssh2 callback-style SFTP method as a promise. */
export function sftpCall<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => (err ? reject(err) : resolve(value as T)));
    } catch (error) {
      reject(error);
    }
  });
}

const STATUS: Record<number, string> = {
  1: 'end of file',
  2: 'no such file or directory',
  3: 'permission denied',
  4: 'the server reported a failure without detail (often a full disk, a quota or a file size limit)',
  5: 'bad message',
  8: 'operation not supported by the server',
};

export function sftpCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** An SFTP failure as an SftpError naming what was being done; network failures keep kind 'network'. */
export function remoteError(error: unknown, doing: string): SftpError {
  // A dropped connection says what was under way; other errors of ours already do.
  if (error instanceof SftpError) return error.kind === 'network' && !error.message.includes(' failed: ') ? new SftpError(`${doing} failed: ${error.message}`, 'network') : error;
  const code = sftpCode(error);
  const message = String((error as { message?: unknown })?.message ?? error);
  if (code !== undefined && STATUS[code]) {
    const detail = code === 4 || message.toLowerCase() === STATUS[code] ? STATUS[code] : `${STATUS[code]}: ${message}`;
    return new SftpError(`${doing} failed: ${detail}`, 'remote');
  }
  return new SftpError(`${doing} failed: ${message}`, isNetworkError(error) ? 'network' : 'remote');
}

/** Joins remote POSIX paths. */
export function remoteJoin(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '') || '/'}${dir.endsWith('/') && dir.length === 1 ? '' : '/'}${name}`;
}

/**
 * Removes what cut-short steps left in `dir` (drafts, files moved aside): names `isLeftover` accepts, this run's
 * (they contain its token) at once, other runs' once older than `staleMs` (a live run renames its drafts within
 * seconds). A dropped connection is thrown; anything else is left for a later run.
 */
export async function removeLeftovers(conn: SftpConnection, dir: string, isLeftover: (name: string) => boolean, token: string, staleMs: number): Promise<void> {
  const listing = await sftpCall<FileEntryWithStats[]>((cb) => conn.sftp.readdir(dir, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    return [] as FileEntryWithStats[];
  });
  const now = Date.now();
  for (const entry of listing) {
    const name = entry.filename;
    if (!isLeftover(name) || entry.attrs.isDirectory()) continue;
    if (name.includes(token) || now - entry.attrs.mtime * 1000 > staleMs) {
      await sftpCall((cb) => conn.sftp.unlink(remoteJoin(dir, name), cb)).catch((error) => {
        if (isNetworkError(error)) throw error;
      });
    }
  }
}

/** Reads a small remote file whole (a record, a manifest), refusing one larger than `limit` bytes. */
export async function readSmallFile(conn: SftpConnection, path: string, limit = 1024 * 1024): Promise<Buffer> {
  const sftp = conn.sftp;
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb));
  try {
    const chunks: Buffer[] = [];
    for (let got = 0; ; ) {
      const buf = Buffer.alloc(32 * 1024);
      const n = await sftpCall<number>((cb) => sftp.read(handle, buf, 0, buf.length, got, (err, bytes) => cb(err, bytes))).catch((error: { code?: unknown }) => {
        // End of file is an error status in SFTP.
        if (error?.code === 1) return 0;
        throw error;
      });
      if (!n) return Buffer.concat(chunks);
      chunks.push(buf.subarray(0, n));
      got += n;
      if (got > limit) throw new Error(`${path} is larger than ${limit} bytes`);
    }
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/**
 * Replaces `path` with `data` through `draft` and a rename, so readers see the old file or the new one whole. A
 * refusal removes the draft and names `what`; a dropped connection is thrown as is, for the caller to retry.
 */
export async function replaceSmallFile(conn: SftpConnection, draft: string, path: string, data: Buffer, what: string): Promise<void> {
  const sftp = conn.sftp;
  try {
    const handle = await sftpCall<Buffer>((cb) => sftp.open(draft, 'w', { mode: 0o644 }, cb));
    await sftpCall((cb) => sftp.write(handle, data, 0, data.length, 0, cb));
    await sftpCall((cb) => sftp.close(handle, cb));
    await sftpCall((cb) => sftp.ext_openssh_rename(draft, path, cb));
  } catch (error) {
    if (isNetworkError(error)) throw error;
    await sftpCall((cb) => sftp.unlink(draft, cb)).catch(() => undefined);
    throw remoteError(error, `writing ${what} ${path}`);
  }
}
