// The layer cache end to end: the bundled action on a "runner" whose cache service is a local one that speaks
// GitHub's cache protocol (Twirp RPCs, archive bytes in Azure Blob storage via azurite), real @actions/cache,
// real apptainer, and the loopback registry's access log to see what each build downloaded.
//
// What "not downloaded" means with apptainer 1.4: when a layer is already in its blob cache, apptainer (through
// go-containerregistry's layout writer) still opens the layer's GET and closes it unread, so the access log shows
// the request, with only what the kernel's socket buffers took before the close (about 3.7 MiB here, bounded by
// net.ipv4.tcp_wmem's 4 MiB). The layers here are 25 MiB of random bytes, far more than those buffers hold, so a
// layer that was downloaded and one that was not are told apart by the bytes the registry sent.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startCacheService, type CacheService } from '../helpers/cache-service.js';
import { freePort, startRegistry, type Registry, type RegistryRequest } from '../helpers/registry.js';
import { requireTools, tempDir } from '../helpers/tools.js';
import { runBundledActionAsync, type ActionRun } from '../helpers/action.js';

jest.setTimeout(180_000);

const FILLER_BYTES = 24 * 1024 * 1024;

let registry: Registry;
let service: CacheService;
let work: { dir: string; cleanup: () => void };
let bundle: { dir: string; cleanup: () => void };
/** Apptainer's cache directory: the same path on every "runner", emptied between them as a fresh runner's is. */
let cacheDir: string;
/** The base layer (busybox and the filler), shared by big:1.0 and big:1.1, and the layer big:1.1 adds. */
let base: { digest: string; size: number };
let added: { digest: string; size: number };

beforeAll(async () => {
  requireTools('apptainer', 'umoci', 'skopeo');
  // The action as shipped: the sources bundled, with @actions/cache and the Azure SDK inside.
  bundle = tempDir('bi-cache-bundle-');
  execFileSync('node', ['scripts/bundle.mjs', '--outdir', bundle.dir], { stdio: 'pipe' });
  [registry, service] = await Promise.all([startRegistry(), startCacheService()]);
  work = tempDir('bi-cache-');
  cacheDir = path.join(work.dir, 'apptainer-cache');
  pushImages();
});

afterAll(async () => {
  await Promise.all([registry?.stop(), service?.stop()]);
  work?.cleanup();
  bundle?.cleanup();
});

/** big:1.0 has one layer (busybox and 24 MiB of random bytes); big:1.1 is big:1.0 plus a small second layer. */
function pushImages(): void {
  const dir = path.join(work.dir, 'images');
  mkdirSync(dir);
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe', encoding: 'utf8' });
  run('umoci', ['init', '--layout', 'layout']);
  run('umoci', ['new', '--image', 'layout:1.0']);
  run('umoci', ['unpack', '--rootless', '--image', 'layout:1.0', 'one']);
  mkdirSync(path.join(dir, 'one/rootfs/bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(dir, 'one/rootfs/bin/busybox'));
  symlinkSync('busybox', path.join(dir, 'one/rootfs/bin/sh'));
  writeFileSync(path.join(dir, 'one/rootfs/filler'), randomBytes(FILLER_BYTES));
  run('umoci', ['repack', '--image', 'layout:1.0', 'one']);
  run('umoci', ['config', '--image', 'layout:1.0', '--config.cmd', '/bin/sh']);
  run('umoci', ['unpack', '--rootless', '--image', 'layout:1.0', 'two']);
  writeFileSync(path.join(dir, 'two/rootfs/release'), '1.1\n');
  run('umoci', ['repack', '--image', 'layout:1.1', 'two']);
  for (const tag of ['1.0', '1.1']) run('skopeo', ['copy', '--dest-tls-verify=false', `oci:layout:${tag}`, `docker://${registry.host}/big:${tag}`]);
  const layers = (tag: string) =>
    (JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/big:${tag}`])) as { layers: { digest: string; size: number }[] }).layers;
  [base] = layers('1.0');
  const next = layers('1.1');
  expect(next[0].digest).toBe(base.digest);
  added = next[1];
}

/** Runs the action on a fresh runner: an empty apptainer cache directory and temp directory. Asynchronously:
 * this process serves the cache service's RPCs. */
async function runOnFreshRunner(tag: string, env: Record<string, string>, inputs: Record<string, string> = {}, keepCache = false): Promise<Run> {
  if (!keepCache) rmSync(cacheDir, { recursive: true, force: true });
  const runnerTemp = path.join(work.dir, `runner-temp-${Date.now()}`);
  mkdirSync(runnerTemp);
  const before = registry.requests().length;
  const calls = service.calls.length;
  const run = await runBundledActionAsync(
    { source: `docker://${registry.host}/big:${tag}`, 'registry-insecure': 'true', output: 'big.sif', ...inputs },
    {
      cwd: work.dir,
      script: path.join(bundle.dir, 'index.js'),
      env: { GITHUB_ACTIONS: 'true', RUNNER_OS: 'Linux', RUNNER_ARCH: 'X64', RUNNER_TEMP: runnerTemp, GITHUB_WORKSPACE: work.dir, APPTAINER_CACHEDIR: cacheDir, ...env },
    },
  );
  // A failed run shows its log: the assertions below only say which expectation broke.
  if (run.status !== 0) console.log(run.stdout);
  return { ...run, requests: registry.requests().slice(before), calls: service.calls.slice(calls), lines: run.stdout.split('\n').filter((l) => /layer cache:/.test(l)) };
}

interface Run extends ActionRun {
  /** Registry requests made during the run. */
  requests: RegistryRequest[];
  /** Cache service RPCs made during the run. */
  calls: string[];
  /** The action's own layer cache lines. */
  lines: string[];
}

/** Bytes the registry sent for a layer during a run, over all its GETs. */
const sent = (run: Run, layer: { digest: string }) =>
  run.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`)).reduce((sum, r) => sum + r.bytes, 0);

const blobPath = (digest: string) => path.join(cacheDir, 'cache', 'blob', 'blobs', ...digest.split(':'));

describe('with the cache service', () => {
  let first: Run;
  let second: Run;
  let third: Run;

  beforeAll(async () => {
    first = await runOnFreshRunner('1.0', service.env);
    second = await runOnFreshRunner('1.0', service.env);
    third = await runOnFreshRunner('1.1', service.env);
  });

  test('the first build downloads the layer, then saves the blob cache into Azure storage through the service', async () => {
    expect(first.status).toBe(0);
    expect(sent(first, base)).toBe(base.size);
    expect(first.calls.map((c) => c.split(' ')[0])).toEqual(['GetCacheEntryDownloadURL', 'CreateCacheEntry', 'FinalizeCacheEntryUpload']);
    const [entry] = service.entries;
    expect(entry.key).toMatch(new RegExp(`^build-image-layers-v1-apptainer-Linux-X64-127\\.0\\.0\\.1_${registry.host.split(':')[1]}/big-[0-9a-f]{16}$`));
    // The archive (zstd or gzip: random bytes do not shrink) holds the layer.
    expect(entry.sizeBytes).toBeGreaterThan(base.size);
    expect(await service.blobSize(entry)).toBe(entry.sizeBytes);
    expect(first.lines.join('\n')).toMatch(/layer cache: nothing restored for build-image-layers-v1-/);
    expect(first.lines.join('\n')).toContain(`as ${entry.key}`);
  });

  test('a second build on a fresh runner restores the layers (exact key) and does not download them again', () => {
    expect(second.status).toBe(0);
    expect(second.lines.join('\n')).toMatch(new RegExp(`restored \\d+ blob\\(s\\), [\\d.]+ MiB \\(\\d+ bytes\\), into ${cacheDir}/cache/blob from ${service.entries[0].key} \\(exact match\\)`));
    expect(existsSync(blobPath(base.digest))).toBe(true);
    expect(sent(second, base)).toBeLessThan(base.size / 2);
    // An exact hit is not stored again.
    expect(second.calls.map((c) => c.split(' ')[0])).toEqual(['GetCacheEntryDownloadURL']);
  });

  test('a new digest gets a new key; the older entry is restored by prefix and only the new layer is downloaded', () => {
    expect(third.status).toBe(0);
    const [older, newer] = service.entries;
    expect(newer.key).not.toBe(older.key);
    expect(newer.key.slice(0, -16)).toBe(older.key.slice(0, -16));
    expect(third.lines.join('\n')).toContain(`from ${older.key} (partial match`);
    expect(sent(third, base)).toBeLessThan(base.size / 2);
    expect(sent(third, added)).toBe(added.size);
    // Saved: big:1.1's manifest, config and two layers; big:1.0's manifest and config, restored, are left out.
    expect(third.lines.join('\n')).toContain('left out 2 blob(s) this build did not use');
    expect(third.lines.join('\n')).toMatch(new RegExp(`saved 4 blob\\(s\\), .* as ${newer.key}`));
    expect(newer.sizeBytes).toBeGreaterThan(base.size);
  });

  test('a runner that keeps its apptainer cache (self-hosted) uses it as it is: nothing restored over it or saved', async () => {
    const run = await runOnFreshRunner('1.0', service.env, {}, true);
    expect(run.status).toBe(0);
    expect(run.lines).toEqual([expect.stringMatching(new RegExp(`layer cache: ${cacheDir}/cache/blob already holds 4 blob\\(s\\), .* used as it is, not restored over or saved`))]);
    expect(run.calls).toEqual([]);
    expect(sent(run, base)).toBeLessThan(base.size / 2);
  });
});

describe('without a usable cache service the build goes on', () => {
  test('no service on the runner: said once, layers downloaded, the build succeeds', async () => {
    const run = await runOnFreshRunner('1.0', {});
    expect(run.status).toBe(0);
    expect(run.lines).toHaveLength(1);
    expect(run.lines[0]).toMatch(/layer cache: not used, this runner offers no cache service .*; layers are downloaded from the registry/);
    expect(sent(run, base)).toBe(base.size);
    expect(run.calls).toEqual([]);
  });

  test('a service that refuses connections: warnings, no failure, the image is built', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/`;
    const run = await runOnFreshRunner('1.0', { ...service.env, ACTIONS_RESULTS_URL: closed });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/::warning::Failed to restore: .*ECONNREFUSED/);
    expect(run.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(path.join(work.dir, 'big.sif'))).toBe(true);
  });
});
