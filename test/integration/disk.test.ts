// Fitting the disk, on real file systems: tmpfs mounts (root may mount here) offered as the only candidates
// through BUILD_IMAGE_TMP_CANDIDATES, a real registry whose access log shows what was pulled, the real apptainer.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { CANDIDATES_ENV, FACTORS } from '../../src/build/disk.js';
import { formatBytes } from '../../src/report/summary.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { runActionFromSources } from '../helpers/run-sources.js';
import { execFlags, requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(180_000);

let registry: Registry;
let work: { dir: string; cleanup: () => void };
const mounts: string[] = [];
let small: string;
let large: string;
/** Compressed bytes of the image: its layers and config, as its manifest lists them. */
let layers: number;

/** A tmpfs of `size` under the work directory (under /tmp, which the apptainer shim shares). */
function tmpfs(name: string, size: string): string {
  const dir = path.join(work.dir, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(async () => {
  requireTools('apptainer', 'mount');
  registry = await startRegistry();
  registry.pushBusybox('tiny', '1.0', { GREETING: 'fits' });
  const manifest = (await (await fetch(`http://${registry.host}/v2/tiny/manifests/1.0`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as {
    layers: { size: number }[];
    config: { size: number };
  };
  layers = manifest.layers.reduce((sum, l) => sum + l.size, 0) + manifest.config.size;
  work = tempDir('bi-disk-');
  small = tmpfs('small', '1m');
  large = tmpfs('large', '64m');
});

afterAll(async () => {
  for (const dir of mounts) spawnSync('umount', ['-l', dir]);
  await registry?.stop();
  work?.cleanup();
});

const needed = () => Math.ceil(layers * FACTORS.cache) + Math.ceil(layers * FACTORS.temporary);
/** Blob downloads the registry logged since `from` (a length of its log). */
const blobRequests = (from: number) => registry.log().slice(from).split('\n').filter((l) => /"GET \/v2\/tiny\/blobs\//.test(l));

function inputs(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { name, source: `docker://${registry.host}/tiny:1.0`, 'registry-insecure': 'true', output: path.join(work.dir, `${name}.sif`), ...extra };
}

describe('a file system too small for the build', () => {
  test('as the only candidate: the run fails before pulling, naming the space needed and found; nothing is left', async () => {
    const mark = registry.log().length;
    const run = await runActionFromSources(inputs('small'), { [CANDIDATES_ENV]: `${small}:${work.dir}/missing` });
    expect(run.exitCode).toBe(1);
    const error = run.log.split('\n').filter((l) => l.startsWith('::error::')).join('\n');
    expect(error).toContain(`::error::not enough disk space for this build: it needs ${formatBytes(needed())} for the layer cache and temporary files (${formatBytes(layers)} of compressed layers: ×${FACTORS.cache} for the layer cache, ×${FACTORS.temporary} for the unpacked sandbox and squashfs) and ${formatBytes(Math.ceil(layers * FACTORS.sif))} for the SIF beside output.`);
    // The workflow command escapes the message's newlines.
    expect(error).toContain(`Free space where it could go (${CANDIDATES_ENV}): ${small}: 1.0 MiB (1048576 bytes) free, ${formatBytes(needed())} needed.`);
    expect(error).toContain(`Skipped: ${work.dir}/missing: does not exist.`);
    expect(error).toContain('Nothing was pulled. Set tmp-dir to a directory on a larger file system, or free space.');
    expect(blobRequests(mark)).toEqual([]);
    expect(run.log).not.toContain('::group::Build with');
    expect(readdirSync(small)).toEqual([]);
    expect(existsSync(path.join(work.dir, 'small.sif'))).toBe(false);
  });

  test('given as tmp-dir, it is used as given and fails the same way, even where another candidate is larger', async () => {
    const mark = registry.log().length;
    const run = await runActionFromSources(inputs('given', { 'tmp-dir': small }), { [CANDIDATES_ENV]: large });
    expect(run.exitCode).toBe(1);
    expect(run.log).toContain(`Free space where it could go (tmp-dir): ${small}: 1.0 MiB (1048576 bytes) free, ${formatBytes(needed())} needed.`);
    expect(blobRequests(mark)).toEqual([]);
  });
});

describe('tmp-dir large enough', () => {
  test('is used, though it is not among the candidates', async () => {
    const run = await runActionFromSources(inputs('given-large', { 'tmp-dir': large, 'dry-run': 'true' }), { [CANDIDATES_ENV]: small });
    expect(run.exitCode).toBe(0);
    expect(run.log).toMatch(new RegExp(`APPTAINER_TMPDIR=${large}/build-image-\\d+-\\w+ \\(tmp-dir\\), APPTAINER_CACHEDIR=${large}/build-image-cache/apptainer$`, 'm'));
    expect(run.log).not.toContain(`candidate ${small}`);
  });
});

describe('a shared file system (FUSE here, as NFS or Lustre would be)', () => {
  let fuse: string;

  beforeAll(() => {
    requireTools('fuse2fs', 'mkfs.ext4');
    // Larger than the tmpfs beside it, so that only the kind of file system keeps it from being chosen.
    const image = path.join(work.dir, 'fuse.img');
    execFileSync('truncate', ['-s', '128M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    fuse = path.join(work.dir, 'fuse');
    mkdirSync(fuse);
    execFileSync('fuse2fs', [image, fuse, '-o', 'fakeroot']);
    mounts.push(fuse);
  });

  test('is skipped among the candidates, saying why, though it has the most free space', async () => {
    const run = await runActionFromSources(inputs('fuse', { 'dry-run': 'true' }), { [CANDIDATES_ENV]: `${fuse}:${large}` });
    expect(run.exitCode).toBe(0);
    expect(run.log).toContain(`candidate skipped: ${fuse}: a FUSE file system (the sandbox needs local ownership and speed)`);
    expect(run.log).toMatch(new RegExp(`APPTAINER_TMPDIR=${large}/build-image-`));
  });

  test('is used when tmp-dir names it', async () => {
    const run = await runActionFromSources(inputs('fuse-given', { 'dry-run': 'true', 'tmp-dir': fuse }), { [CANDIDATES_ENV]: large });
    expect(run.exitCode).toBe(0);
    expect(run.log).toMatch(new RegExp(`APPTAINER_TMPDIR=${fuse}/build-image-\\d+-\\w+ \\(tmp-dir\\)`));
  });
});

describe('a multi-platform image (an index, as NGC publishes)', () => {
  test("the estimate is that of this machine's platform, not another's", async () => {
    // Two real images under one index: this machine's, and a larger "arm64" one (a 64 KiB label in its config).
    const bigDigest = registry.pushBusybox('tiny', 'big', {}, { padding: 'x'.repeat(65536) });
    const manifestOf = async (reference: string) => {
      const response = await fetch(`http://${registry.host}/v2/tiny/manifests/${reference}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const body = Buffer.from(await response.arrayBuffer());
      const json = JSON.parse(body.toString('utf8')) as { layers: { size: number }[]; config: { size: number } };
      return { size: body.length, digest: response.headers.get('docker-content-digest')!, bytes: json.layers.reduce((sum, l) => sum + l.size, 0) + json.config.size };
    };
    const [mine, big] = [await manifestOf('1.0'), await manifestOf(bigDigest)];
    expect(big.bytes).toBeGreaterThan(mine.bytes + 60_000); // the layers themselves differ by a few bytes (tar times)
    const arch = process.arch === 'arm64' ? ['arm64', 'amd64'] : ['amd64', 'arm64'];
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: big.digest, size: big.size, platform: { os: 'linux', architecture: arch[1] } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: mine.digest, size: mine.size, platform: { os: 'linux', architecture: arch[0] } },
      ],
    };
    const put = await fetch(`http://${registry.host}/v2/tiny/manifests/multi`, { method: 'PUT', headers: { 'Content-Type': index.mediaType }, body: JSON.stringify(index) });
    expect(put.status).toBe(201);
    const run = await runActionFromSources({ ...inputs('multi', { 'dry-run': 'true' }), source: `docker://${registry.host}/tiny:multi` }, { [CANDIDATES_ENV]: large });
    expect(run.exitCode).toBe(0);
    expect(run.log).toContain(`(${formatBytes(mine.bytes)} of compressed layers:`);
    expect(run.summary).toContain(`| Disk | would use ${large}: ${formatBytes(Math.ceil(mine.bytes * FACTORS.cache) + Math.ceil(mine.bytes * FACTORS.temporary))} needed, `);
  });
});

describe('a larger file system offered beside it', () => {
  let run: Awaited<ReturnType<typeof runActionFromSources>>;
  let mark: number;

  beforeAll(async () => {
    mark = registry.log().length;
    run = await runActionFromSources(inputs('large'), { [CANDIDATES_ENV]: `${small}:${large}` });
  });

  test('is chosen for the temporary files and the cache, and the build succeeds', () => {
    expect(run.log.match(/::error::.*/g)).toBeNull();
    expect(run.exitCode).toBe(0);
    expect(run.log).toMatch(new RegExp(`APPTAINER_TMPDIR=${large}/build-image-\\d+-\\w+ \\(the most free space\\), APPTAINER_CACHEDIR=${large}/build-image-cache/apptainer$`, 'm'));
    const image = path.join(work.dir, 'large.sif');
    expect(execFileSync('apptainer', ['exec', ...execFlags(), image, '/bin/sh', '-c', 'echo $GREETING'], { encoding: 'utf8' }).trim()).toBe('fits');
  });

  test('the layers were pulled into the cache there; the temporary directory is gone; the small one was not touched', () => {
    expect(blobRequests(mark).length).toBeGreaterThan(0);
    const blobs = execFileSync('find', [path.join(large, 'build-image-cache'), '-type', 'f', '-size', `+${Math.floor(layers / 2048)}k`], { encoding: 'utf8' });
    expect(blobs.trim()).not.toBe('');
    expect(readdirSync(large)).toEqual(['build-image-cache']);
    expect(readdirSync(small)).toEqual([]);
  });

  test('the summary reports the most space used there, with the estimate and the space free before', () => {
    const m = new RegExp(`\\| Disk \\| ([\\d.]+ \\w+ \\((\\d+) bytes\\)) used at most on the file system of ${large} \\(estimated ${formatBytes(needed()).replace(/[()]/g, '\\$&')}, ([\\d.]+ MiB) \\(\\d+ bytes\\) free before\\) \\|`).exec(run.summary);
    expect(m).not.toBeNull();
    const peak = Number(m![2]);
    // At least the cache (the layers, kept); at most the estimate: the factors are the measured peaks, rounded up.
    expect(peak).toBeGreaterThanOrEqual(layers);
    expect(peak).toBeLessThanOrEqual(needed());
  });
});
