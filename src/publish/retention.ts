// Retention: after a promotion, old versions of the same image family beyond `keep` are deleted, but only files
// this tool published. A file counts as ours when a record of this tool sits beside it (`.NAME.build-image`,
// written at promotion) or when its SIF labels carry this tool's build key; anything else in the directory (an
// image the centre's staff uploaded by hand) is never a candidate. The plan is a pure function; the remote part
// lists the directory, reads records and labels (SIF header and descriptors only), and deletes.
import type { FileEntryWithStats } from 'ssh2';
import { LABELS } from '../build/provenance.js';
import { readSif, SifFormatError } from '../image/sif.js';
import type { Reporter } from '../report/reporter.js';
import { isNetworkError, type SftpConnection } from './connect.js';
import { recordName } from './record.js';
import { remoteError, remoteJoin, removeLeftovers, replaceSmallFile, sftpCall } from './remote.js';

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

/**
 * An image's version: its name without the image extension. `pytorch-24.10.sif` and `pytorch-24.10.sqsh` are one
 * version in two formats, kept or deleted together.
 */
export function imageVersion(name: string): string {
  return name.replace(/\.(sif|simg|sqsh|img)$/i, '');
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
 * Chooses what to delete: of the family's versions, the newest `keep` (by their newest file's mtime, then name) stay;
 * so do the live file's version and the version of the alias target and of every protected name, whether or not
 * they count among the newest. A version's files (the SIF and the .sqsh beside it) share its fate. `keep` < 1 keeps
 * everything.
 */
export function planRetention(files: RetentionFile[], opts: { family: string; keep: number; live: string; protected: string[] }): RetentionPlan {
  const members = files.filter((f) => isFamilyMember(f.name, opts.family) || f.name === opts.live);
  if (opts.keep < 1) return { keep: members.map((f) => f.name), delete: [] };
  const newest = (a: RetentionFile, b: RetentionFile) => b.mtime - a.mtime || b.name.localeCompare(a.name, 'en', { numeric: true });
  const sorted = [...members].sort(newest);
  // The files are sorted newest first, so a version's first file carries its newest mtime.
  const versions = [...new Set(sorted.map((f) => imageVersion(f.name)))];
  const kept = new Set([...versions.slice(0, opts.keep), ...[opts.live, ...opts.protected].map(imageVersion)]);
  const keep: string[] = [];
  const del: string[] = [];
  for (const f of sorted) (kept.has(imageVersion(f.name)) ? keep : del).push(f.name);
  return { keep, delete: del };
}

/** What promotion records about each image it put live, in the directory's manifest. */
export interface PublishRecord {
  family: string;
  sha256?: string;
  size: number;
  published: string;
  run?: string;
}

interface Manifest {
  tool: 'build-image';
  images: Record<string, PublishRecord>;
}

/** The small manifest this tool keeps in `remote-dir`: which files it published, for retention to trust. */
export const MANIFEST_NAME = '.build-image.json';

export async function readManifest(conn: SftpConnection, remoteDir: string): Promise<Manifest> {
  const path = remoteJoin(remoteDir, MANIFEST_NAME);
  const text = await readWhole(conn, path).catch((error) => {
    if (isNetworkError(error)) throw error;
    return undefined;
  });
  try {
    const parsed = text ? (JSON.parse(text) as Manifest) : undefined;
    if (parsed?.tool === 'build-image' && parsed.images && typeof parsed.images === 'object') return parsed;
  } catch {
    // A damaged manifest claims nothing; labels still identify our images.
  }
  return { tool: 'build-image', images: {} };
}

/**
 * Changes the manifest: read, change, write whole under a draft name, rename into place (posix-rename replaces the
 * old one atomically), then read back. Publishers of other images in the same directory may write it at the same
 * moment; a change lost that way is seen on reading back and made again.
 */
export async function updateManifest(conn: SftpConnection, remoteDir: string, token: string, change: (images: Record<string, PublishRecord>) => void, applied: (images: Record<string, PublishRecord>) => boolean): Promise<void> {
  const path = remoteJoin(remoteDir, MANIFEST_NAME);
  const draft = `${path}.${token}.new`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const manifest = await readManifest(conn, remoteDir);
    change(manifest.images);
    await replaceSmallFile(conn, draft, path, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'the manifest');
    if (applied((await readManifest(conn, remoteDir)).images)) return;
  }
}

async function readWhole(conn: SftpConnection, path: string): Promise<string> {
  const sftp = conn.sftp;
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb));
  try {
    const chunks: Buffer[] = [];
    for (let pos = 0; pos < 16 * 1024 * 1024; ) {
      const buf = Buffer.alloc(32 * 1024);
      const n = await sftpCall<number>((cb) => sftp.read(handle, buf, 0, buf.length, pos, (err, bytes) => cb(err, bytes))).catch((error) => {
        if ((error as { code?: unknown }).code === 1) return 0; // end of file
        throw error;
      });
      if (!n) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

/** The labels of a remote SIF, read in a few small ranged reads; undefined when the file is not a SIF. */
export async function readRemoteLabels(conn: SftpConnection, path: string, size: number): Promise<Record<string, string> | undefined> {
  const sftp = conn.sftp;
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', cb));
  try {
    const source = {
      size,
      async read(offset: number, length: number): Promise<Uint8Array> {
        const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        for (let got = 0; got < buf.length; ) {
          const n = await sftpCall<number>((cb) => sftp.read(handle, buf, got, Math.min(buf.length - got, 32 * 1024), offset + got, (err, bytes) => cb(err, bytes)));
          if (!n) return buf.subarray(0, got);
          got += n;
        }
        return buf;
      },
    };
    return (await readSif(source)).labels;
  } catch (error) {
    if (isNetworkError(error)) throw error;
    if (error instanceof SifFormatError || (error as { code?: unknown }).code === 1) return undefined;
    throw error;
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}

export interface RetentionOptions {
  remoteDir: string;
  remoteName: string;
  family: string;
  keep: number;
  alias?: string;
  /** Absolute remote paths never deleted (e.g. every image the docs table lists). */
  protectedPaths: string[];
  reporter: Reporter;
  /** List what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Names this run's manifest drafts. */
  token: string;
}

export interface RetentionOutcome {
  family: string;
  kept: string[];
  /** Absolute paths deleted (or, in a dry run, that would be). */
  deleted: string[];
  /** Family-named files left alone because nothing shows this tool published them. */
  notOurs: string[];
}

/** Deletes the family's versions beyond `keep` that this tool published; never the live file, a link's target or a protected path. */
export async function applyRetention(conn: SftpConnection, opts: RetentionOptions, deleted: Set<string>): Promise<RetentionOutcome> {
  const { reporter, family } = opts;
  if (opts.keep < 1) {
    reporter.info('retention is off (keep: 0): nothing deleted');
    return { family, kept: [], deleted: [], notOurs: [] };
  }
  const sftp = conn.sftp;
  const listing = await sftpCall<FileEntryWithStats[]>((cb) => sftp.readdir(opts.remoteDir, cb)).catch((error) => {
    throw isNetworkError(error) ? error : remoteError(error, `listing ${opts.remoteDir} for retention`);
  });
  const protectedNames = opts.protectedPaths.filter((p) => dirOf(p) === normDir(opts.remoteDir)).map((p) => p.slice(p.lastIndexOf('/') + 1));
  for (const link of listing.filter((e) => e.attrs.isSymbolicLink())) {
    const target = await sftpCall<string>((cb) => sftp.readlink(remoteJoin(opts.remoteDir, link.filename), cb)).catch((error) => {
      if (isNetworkError(error)) throw error;
      return undefined;
    });
    if (target && (!target.includes('/') || dirOf(target) === normDir(opts.remoteDir))) protectedNames.push(target.slice(target.lastIndexOf('/') + 1));
  }
  // Symlinks (aliases) are never candidates; of the family's files, only those this tool published.
  const manifest = (await readManifest(conn, opts.remoteDir)).images;
  const ours: RetentionFile[] = [];
  const notOurs: string[] = [];
  for (const entry of listing) {
    const name = entry.filename;
    if (!entry.attrs.isFile() || name === opts.remoteName || !isFamilyMember(name, family)) continue;
    if (await publishedByUs(conn, opts.remoteDir, name, entry.attrs.size, family, manifest[name])) ours.push({ name, mtime: entry.attrs.mtime });
    else notOurs.push(name);
  }
  // In a dry run the new image is not live yet: count it as the newest, as the promotion would make it.
  const live = listing.find((e) => e.filename === opts.remoteName);
  ours.push({ name: opts.remoteName, mtime: live?.attrs.mtime ?? Math.floor(Date.now() / 1000) });
  const plan = planRetention(ours, { family, keep: opts.keep, live: opts.remoteName, protected: protectedNames });
  const recordsGone = new Set<string>();
  for (const name of plan.delete) {
    const path = remoteJoin(opts.remoteDir, name);
    if (opts.dryRun) {
      deleted.add(path);
      continue;
    }
    try {
      await sftpCall((cb) => sftp.unlink(path, cb));
      deleted.add(path);
    } catch (error) {
      if (isNetworkError(error)) throw error;
      // Gone already: an earlier attempt deleted it and the answer was lost.
      if ((error as { code?: unknown }).code === 2) deleted.add(path);
      else reporter.warning(`retention: could not delete ${path}: ${remoteError(error, 'deleting').message}`);
    }
    // The version's record (`NAME.provenance.json`) goes with it: its SIF and its .sqsh share one.
    if (deleted.has(path) && !recordsGone.has(imageVersion(name))) {
      recordsGone.add(imageVersion(name));
      await removeRecord(conn, remoteJoin(opts.remoteDir, recordName(name)), reporter);
    }
  }
  const gone = plan.delete.filter((name) => deleted.has(remoteJoin(opts.remoteDir, name)) && manifest[name]);
  if (gone.length > 0 && !opts.dryRun) {
    await updateManifest(
      conn,
      opts.remoteDir,
      opts.token,
      (images) => gone.forEach((name) => delete images[name]),
      (images) => gone.every((name) => !images[name]),
    );
  }
  const verb = opts.dryRun ? 'would delete' : 'deleted';
  reporter.info(
    `retention (family "${family}", keep ${opts.keep}): kept ${plan.keep.length ? plan.keep.join(', ') : 'nothing'}; ` +
      `${deleted.size ? `${verb} ${[...deleted].join(', ')}` : `${verb} nothing`}` +
      `${notOurs.length ? `; left alone (not published by build-image: no record, no labels): ${notOurs.join(', ')}` : ''}`,
  );
  return { family, kept: plan.keep, deleted: [...deleted], notOurs };
}

/** An image's provenance record goes with it (`NAME.provenance.json`, absent for images from before records). */
async function removeRecord(conn: SftpConnection, path: string, reporter: Reporter): Promise<void> {
  await sftpCall((cb) => conn.sftp.unlink(path, cb)).catch((error) => {
    if (isNetworkError(error)) throw error;
    if ((error as { code?: unknown }).code !== 2) reporter.warning(`retention: could not delete ${path}: ${remoteError(error, 'deleting').message}`);
  });
}

async function publishedByUs(conn: SftpConnection, dir: string, name: string, size: number, family: string, record?: PublishRecord): Promise<boolean> {
  if (record) return record.family === family;
  const labels = await readRemoteLabels(conn, remoteJoin(dir, name), size);
  return labels?.[LABELS.buildKey] !== undefined;
}

/**
 * Removes what cut-short promotions leave in `remote-dir`: manifest drafts and alias drafts, this run's at once and
 * other runs' once they are older than `staleMs` (a live run renames its drafts within seconds).
 */
export function sweepLeftovers(conn: SftpConnection, remoteDir: string, token: string, staleMs: number): Promise<void> {
  const isDraft = (name: string) => (name.startsWith(`${MANIFEST_NAME}.`) && name.endsWith('.new')) || (name.startsWith('.') && /\.[0-9a-f]{24}\.tmp$/.test(name));
  return removeLeftovers(conn, remoteDir, isDraft, token, staleMs);
}

function normDir(dir: string): string {
  return dir.replace(/\/+$/, '') || '/';
}

function dirOf(path: string): string {
  return normDir(path.slice(0, path.lastIndexOf('/') + 1));
}
