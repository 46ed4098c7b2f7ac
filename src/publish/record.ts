// One provenance record per run: where the image came from (repository, commit, source and digest, builder), what it
// is (sha256, size, build key), how it fared (smoke figures), where it went (remote path) and the docs PR. It is
// written beside the image (`NAME.provenance.json`), staged beside the staged image and, at promotion, placed beside
// the live one, so a separate smoke or publish job (another runner, as in the nightly) carries the same evidence.
import { writeFile } from 'node:fs/promises';
import type { BuildResult } from '../build/build.js';
import type { BuildContext } from '../build/provenance.js';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, type Summary } from '../report/summary.js';
import { VERSION } from '../version.js';
import { isNetworkError } from './connect.js';
import { readSmallFile, remoteJoin, replaceSmallFile, sftpCall } from './remote.js';
import type { SftpSession } from './session.js';

export interface RunRecord {
  tool: 'build-image';
  toolVersion: string;
  repository?: string;
  revision?: string;
  runUrl?: string;
  created: string;
  source: { uri: string; digest?: string };
  buildKey: string;
  image: { sha256: string; size: number };
  /** The enroot image derived from it (`formats: sif,sqsh`): what its staged copy must hash to at promotion. */
  sqsh?: { sha256: string; size: number };
  builder: { product: string; version: string; fakeroot: boolean };
  /** The smoke test's `smoke-json` (parsed) and its Markdown table. */
  smoke?: { json: unknown; markdown: string };
  remotePath?: string;
  prUrl?: string;
}

/** `pytorch-24.10.sif` → `pytorch-24.10.provenance.json`. */
export function recordName(imageName: string): string {
  return `${imageName.replace(/\.(sif|simg|sqsh|img)$/i, '')}.provenance.json`;
}

export function recordFromBuild(build: BuildResult, context: BuildContext): RunRecord {
  return {
    tool: 'build-image',
    toolVersion: VERSION,
    repository: context.repositoryUrl,
    revision: context.revision,
    runUrl: context.runUrl,
    created: context.created.toISOString(),
    source: { uri: build.sourceUri, digest: build.sourceDigest },
    buildKey: build.buildKey,
    image: { sha256: build.sha256, size: build.size },
    builder: { product: build.builder.product, version: build.builder.version, fakeroot: build.fakeroot },
  };
}

export function isRunRecord(value: unknown): value is RunRecord {
  const r = value as RunRecord;
  return r?.tool === 'build-image' && typeof r.buildKey === 'string' && typeof r.image?.sha256 === 'string';
}

export async function writeLocalRecord(file: string, record: RunRecord): Promise<void> {
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Writes the record to `dir/name` on the server: a draft, then a rename over the old one. Over the job's `session`
 * (reconnecting after a dropped connection), so a publish job places it without a connection of its own.
 */
export async function putRecord(session: SftpSession, dir: string, name: string, record: RunRecord, options: { removeFrom?: string } = {}): Promise<string> {
  const path = remoteJoin(dir, name);
  const draft = remoteJoin(dir, `.${name}.${process.pid}.new`);
  const data = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  await session.run(`placing the provenance record ${path}`, async (conn) => {
    await replaceSmallFile(conn, draft, path, data, 'the provenance record');
    if (options.removeFrom) {
      await sftpCall((cb) => conn.sftp.unlink(remoteJoin(options.removeFrom!, name), cb)).catch((error) => {
        if (isNetworkError(error)) throw error;
      });
    }
  });
  return path;
}

/**
 * The record a build job staged beside the image, or undefined when there is none (or it is not ours). Read over the
 * job's `session`: a dropped connection reconnects and reads again, and one that stays down is an error (the publish
 * fails), never "no record", which would publish without the build's evidence.
 */
export async function readRemoteRecord(session: SftpSession, dir: string, name: string, reporter: Reporter): Promise<RunRecord | undefined> {
  const path = remoteJoin(dir, name);
  const data = await session.run(`reading the staged provenance record ${path}`, (conn) =>
    readSmallFile(conn, path).catch((error) => {
      if (isNetworkError(error)) throw error;
      return undefined;
    }),
  );
  if (!data) return undefined;
  try {
    const parsed = JSON.parse(data.toString('utf8')) as unknown;
    return isRunRecord(parsed) ? parsed : undefined;
  } catch {
    reporter.warning(`${path} is not a provenance record of build-image (not JSON); publishing without it`);
    return undefined;
  }
}

export function recordSummary(record: RunRecord): Summary {
  const facts: Summary['facts'] = [];
  if (record.remotePath) facts.push({ label: 'Published', value: record.remotePath, code: true });
  facts.push({ label: 'SHA-256', value: record.image.sha256, code: true });
  facts.push({ label: 'Size', value: formatBytes(record.image.size) });
  facts.push({ label: 'Source', value: record.source.uri, code: true });
  if (record.source.digest) facts.push({ label: 'Source digest', value: record.source.digest, code: true });
  facts.push({ label: 'Builder', value: `${record.builder.product} ${record.builder.version}${record.builder.fakeroot ? ' (--fakeroot)' : ''}, build-image ${record.toolVersion}` });
  facts.push({ label: 'Build key', value: record.buildKey, code: true });
  if (record.revision) facts.push({ label: 'Revision', value: record.revision, code: true });
  if (record.runUrl) facts.push({ label: 'Built by', value: record.runUrl });
  if (record.prUrl) facts.push({ label: 'Docs PR', value: record.prUrl });
  return { title: 'build-image: provenance', facts };
}
