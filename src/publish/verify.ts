// The check before the partial is renamed to its staged name: the segments the server hashed while the upload ran,
// else one remote sha256 of the whole file, else (where the account cannot run commands and `verify: size` allows)
// its size.
import type { Stats as SftpStats } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { SftpError, type SftpConnection } from './connect.js';
import { remoteError, sftpCall } from './remote.js';
import { rangesPath } from './resume.js';
import { cannotHashMessage, remoteSha256, type HashTool, type VerifyMode } from './remote-hash.js';
import type { SegmentVerifier } from './segments.js';

export interface Verified {
  /** `sha256`: the server hashed the file and it matched; `size`: the account cannot run commands. */
  verification: 'sha256' | 'size';
  /** The server's program that computed the hash (`openssl` or `sha256sum`), when it did. */
  hashTool?: HashTool;
}

export async function verifyPartial(
  conn: SftpConnection,
  partial: string,
  size: number,
  sha256: string,
  reporter: Reporter,
  mode: VerifyMode,
  segments?: SegmentVerifier,
): Promise<Verified> {
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
      await Promise.all([partial, rangesPath(partial)].map((p) => sftpCall((cb) => conn.sftp.unlink(p, cb)).catch(() => undefined)));
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
