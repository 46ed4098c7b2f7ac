// What is published at the target path now, read before building: the build key in the SIF labels of
// `remote-dir/remote-name`, read over SFTP in a few ranged reads of the header and
// descriptors, never the image itself. Equal keys mean this run would build the same image again.
import type { FileEntryWithStats, Stats } from 'ssh2';
import { LABELS } from '../build/provenance.js';
import type { Reporter } from '../report/reporter.js';
import { connectSftp, isNetworkError, type SftpConnection, type SftpTarget } from './connect.js';
import { remoteJoin, sftpCall } from './remote.js';
import type { SftpSession } from './session.js';
import { readRemoteLabels } from './retention.js';
import { StageInputError } from '../user-error.js';

export interface PublishedImage {
  path: string;
  size: number;
  buildKey?: string;
  /** Bytes read from the image to find its labels. */
  bytesRead: number;
}

/** The connection with every `read` counted, so the log can show how little of the image was read. */
function counting(conn: SftpConnection): { conn: SftpConnection; bytes: () => number } {
  let total = 0;
  const sftp = new Proxy(conn.sftp, {
    get(target, prop, receiver) {
      if (prop !== 'read') {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (handle: Buffer, buffer: Buffer, offset: number, length: number, position: number, cb: (err: Error | undefined, n: number, ...rest: unknown[]) => void) =>
        target.read(handle, buffer, offset, length, position, (err, n, ...rest) => {
          if (!err) total += n;
          cb(err, n, ...rest);
        });
    },
  });
  return { conn: { ...conn, sftp } as SftpConnection, bytes: () => total };
}

/** The image at `remoteDir/name`, or undefined when nothing is there. Links are followed (an alias). */
async function readPublished(sftp: SftpConnection, remoteDir: string, name: string): Promise<PublishedImage | undefined> {
  const path = remoteJoin(remoteDir, name);
  const stats = await sftpCall<Stats>((cb) => sftp.sftp.stat(path, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  if (!stats || !stats.isFile()) return undefined;
  const counted = counting(sftp);
  const labels = await readRemoteLabels(counted.conn, path, stats.size);
  return { path, size: stats.size, buildKey: labels?.[LABELS.buildKey], bytesRead: counted.bytes() };
}

export interface UnchangedCheck {
  target: SftpTarget;
  remoteDir: string;
  remoteName: string;
  /** Build regardless of the published image's key (only the immutable check remains). */
  force: boolean;
  /** An existing file at the target path stops the run before anything is built or uploaded. */
  immutable: boolean;
  reporter: Reporter;
  signal?: AbortSignal;
}

/**
 * The reason to skip when the image published at the target path carries `buildKey` (an alias is not looked at: a
 * release's new versioned name must be published even when its inputs equal the previous release's);
 * undefined when it differs or nothing is published. With `immutable`, an existing file with another key (or any
 * existing file, with `force`) stops the run. A failure to look is a warning (a build is never wrong), except where
 * `immutable` needs the answer.
 */
export async function publishedUnchanged(check: UnchangedCheck, buildKey: string): Promise<string | undefined> {
  const { reporter } = check;
  let conn;
  let published: PublishedImage | 'none';
  try {
    conn = await connectSftp(check.target, { reporter, signal: check.signal, retries: 1 });
    published = (await readPublished(conn, check.remoteDir, check.remoteName)) ?? 'none';
  } catch (error) {
    if (check.immutable) throw error;
    reporter.warning(`could not read the build key of the published image (${(error as Error).message}); building`);
    return undefined;
  } finally {
    await conn?.end().catch(() => undefined);
  }
  if (published === 'none') {
    reporter.info(`nothing published at ${remoteJoin(check.remoteDir, check.remoteName)} yet: building`);
    return undefined;
  }
  reporter.info(`read ${published.bytesRead} of ${published.size} bytes of ${published.path} (SIF header, descriptors, labels)`);
  if (published.buildKey === buildKey && !check.force) {
    return `the image published at ${published.path} was built from the same inputs (build key ${buildKey}); force: true rebuilds anyway`;
  }
  if (check.immutable) throw immutableError(published.path);
  reporter.info(`${published.path} has build key ${published.buildKey ?? 'none (not built by build-image)'}; this build's is ${buildKey}: building`);
  return undefined;
}

/** An existing versioned name under `immutable`: said before anything is built, uploaded or renamed. */
export function immutableError(path: string): StageInputError {
  return new StageInputError(
    'remote-name',
    `${path} exists already, and immutable is on (the default for a tag-triggered run): a published name is never replaced. Nothing was built, uploaded or changed on the server. Publish under a new name (e.g. a remote-name with {git-tag}), or set immutable: false to replace it`,
  );
}

/** Whether a file (or link) exists at `remoteDir/name`: for a publish job, where the build job checked already but
 * another run may have published since. */
export function remoteExists(session: SftpSession, remoteDir: string, name: string): Promise<boolean> {
  return session.run(`listing ${remoteDir}`, async (conn) => {
    const dir = await sftpCall<FileEntryWithStats[]>((cb) => conn.sftp.readdir(remoteDir, cb)).catch((error) => {
      if (isNetworkError(error)) throw error;
      return [] as FileEntryWithStats[];
    });
    return dir.some((e) => e.filename === name);
  });
}
