// The layer cache end to end: the bundled action on a "runner" whose cache service is a local one that speaks
// GitHub's cache protocol (Twirp RPCs, archive bytes in Azure Blob storage via azurite), real @actions/cache,
// real apptainer, and the loopback registry's access log to see what each build downloaded.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startCacheService, type CacheService } from '../helpers/cache-service.js';
import { freePort, startRegistry, type Registry, type RegistryRequest } from '../helpers/registry.js';
import { requireTools, tempDir } from '../helpers/tools.js';
import { runBundledActionAsync, type ActionRun } from '../helpers/action.js';

jest.setTimeout(180_000);

let registry: Registry;
let service: CacheService;
let work: { dir: string; cleanup: () => void };
let bundle: { dir: string; cleanup: () => void };
/** Apptainer's cache directory: the same path on every "runner", emptied between them as a fresh runner's is. */
let cacheDir: string;
let layer: string;

beforeAll(async () => {
  requireTools('apptainer', 'zstd');
  // The action as shipped: the sources bundled, with @actions/cache and the Azure SDK inside.
  bundle = tempDir('bi-cache-bundle-');
  execFileSync('node', ['scripts/bundle.mjs', '--outdir', bundle.dir], { stdio: 'pipe' });
  [registry, service] = await Promise.all([startRegistry(), startCacheService()]);
  registry.pushBusybox('tiny', '1.0');
  layer = layerDigest('tiny:1.0');
  work = tempDir('bi-cache-');
  cacheDir = path.join(work.dir, 'apptainer-cache');
});

afterAll(async () => {
  await Promise.all([registry?.stop(), service?.stop()]);
  work?.cleanup();
  bundle?.cleanup();
});

/** The one layer of an image in the registry, as its manifest lists it. */
function layerDigest(ref: string): string {
  const manifest = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${ref}`], { encoding: 'utf8' });
  return (JSON.parse(manifest) as { layers: { digest: string }[] }).layers[0].digest;
}

/** Runs the action on a fresh runner: an empty apptainer cache directory and temp directory. Asynchronously:
 * this process serves the cache service's RPCs. */
async function runOnFreshRunner(inputs: Record<string, string>, env: Record<string, string>): Promise<{ run: ActionRun; requests: RegistryRequest[] }> {
  rmSync(cacheDir, { recursive: true, force: true });
  const runnerTemp = path.join(work.dir, `runner-temp-${Date.now()}`);
  mkdirSync(runnerTemp);
  const before = registry.requests().length;
  const run = await runBundledActionAsync(
    { source: `docker://${registry.host}/tiny:1.0`, 'registry-insecure': 'true', output: 'tiny.sif', ...inputs },
    {
      cwd: work.dir,
      script: path.join(bundle.dir, 'index.js'),
      env: { GITHUB_ACTIONS: 'true', RUNNER_OS: 'Linux', RUNNER_ARCH: 'X64', RUNNER_TEMP: runnerTemp, GITHUB_WORKSPACE: work.dir, APPTAINER_CACHEDIR: cacheDir, ...env },
    },
  );
  return { run, requests: registry.requests().slice(before) };
}

const layerGets = (requests: RegistryRequest[]) => requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer}`));
const cacheLines = (run: ActionRun) => run.stdout.split('\n').filter((l) => /layer cache:/.test(l));

describe('with the cache service', () => {
  let first: { run: ActionRun; requests: RegistryRequest[] };
  let second: { run: ActionRun; requests: RegistryRequest[] };

  beforeAll(async () => {
    first = await runOnFreshRunner({}, service.env);
    second = await runOnFreshRunner({}, service.env);
  });

  test('the first build downloads the layer and saves the blob cache into Azure storage through the service', async () => {
    expect(first.run.status).toBe(0);
    expect(layerGets(first.requests).length).toBeGreaterThan(0);
    expect(service.entries).toHaveLength(1);
    const [entry] = service.entries;
    expect(entry.key).toMatch(new RegExp(`^build-image-layers-v1-apptainer-Linux-X64-127\\.0\\.0\\.1_${registry.host.split(':')[1]}/tiny-[0-9a-f]{16}$`));
    expect(entry.sizeBytes).toBeGreaterThan(0);
    expect(await service.blobSize(entry)).toBe(entry.sizeBytes);
    expect(cacheLines(first.run).join('\n')).toMatch(/layer cache: saved \d+ blob\(s\), .* as build-image-layers-v1-apptainer-/);
  });

  test('a second build on a fresh runner restores the layers (exact key) and fetches no layer from the registry', () => {
    expect(second.run.status).toBe(0);
    expect(cacheLines(second.run).join('\n')).toMatch(new RegExp(`restored \\d+ blob\\(s\\), .* from ${service.entries[0].key} \\(exact match\\)`));
    expect(existsSync(path.join(cacheDir, 'cache', 'blob', 'blobs', ...layer.split(':')))).toBe(true);
    expect(layerGets(second.requests)).toEqual([]);
    // An exact hit is not saved again.
    expect(service.entries).toHaveLength(1);
    expect(service.calls.slice(-1)[0]).toMatch(/^GetCacheEntryDownloadURL /);
  });
});
