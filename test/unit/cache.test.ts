// Layer cache keys and the cache service check: what decides which entry a runner restores and saves.
import { describe, expect, test } from '@jest/globals';
import type { BuilderInfo } from '../../src/build/builder.js';
import { blobCacheDir, cacheKeys, restoreLayerCache, serviceAbsence } from '../../src/build/cache.js';
import type { CacheSetting } from '../../src/config/config.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';

const apptainer: BuilderInfo = { command: 'apptainer', path: '/usr/bin/apptainer', product: 'apptainer', version: '1.4.5', envPrefix: 'APPTAINER_' };
const singularity: BuilderInfo = { command: 'singularity', path: '/usr/bin/singularity', product: 'singularity-ce', version: '4.1.2', envPrefix: 'SINGULARITY_' };
const runner = { RUNNER_OS: 'Linux', RUNNER_ARCH: 'X64' };
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const NGC = 'docker://nvcr.io/nvidia/pytorch:24.10-py3';

describe('cacheKeys', () => {
  test('names builder, runner OS and architecture, and the repository without tag or digest', () => {
    const { key, restoreKeys } = cacheKeys(apptainer, NGC, [D1], runner);
    expect(key).toMatch(/^build-image-layers-v1-apptainer-Linux-X64-nvcr\.io\/nvidia\/pytorch-[0-9a-f]{16}$/);
    expect(restoreKeys).toEqual(['build-image-layers-v1-apptainer-Linux-X64-nvcr.io/nvidia/pytorch-', 'build-image-layers-v1-apptainer-Linux-X64-']);
    for (const prefix of restoreKeys) expect(key.startsWith(prefix)).toBe(true);
  });

  test('the key changes when a digest changes, and only then', () => {
    const key = (digests: string[], uri = NGC) => cacheKeys(apptainer, uri, digests, runner).key;
    expect(key([D1])).toBe(key([D1]));
    expect(key([D2])).not.toBe(key([D1]));
    expect(key([D1, D2])).not.toBe(key([D1]));
    // A new monthly tag with a new digest: a new key, but the same repository prefix to restore from.
    const next = cacheKeys(apptainer, 'docker://nvcr.io/nvidia/pytorch:24.11-py3', [D2], runner);
    expect(next.key).not.toBe(key([D1]));
    expect(next.restoreKeys[0]).toBe(cacheKeys(apptainer, NGC, [D1], runner).restoreKeys[0]);
  });

  test('another builder or runner OS never shares entries', () => {
    const a = cacheKeys(apptainer, NGC, [D1], runner);
    const s = cacheKeys(singularity, NGC, [D1], runner);
    const arm = cacheKeys(apptainer, NGC, [D1], { RUNNER_OS: 'Linux', RUNNER_ARCH: 'ARM64' });
    for (const other of [s, arm]) {
      expect(other.key).not.toBe(a.key);
      expect(a.key.startsWith(other.restoreKeys[1])).toBe(false);
    }
  });

  test('registry ports, digests and odd characters give a key @actions/cache accepts (no commas, at most 512)', () => {
    const { key } = cacheKeys(apptainer, `docker://127.0.0.1:5000/ns/img,x:tag@${D1}`, [D1], runner);
    expect(key).toMatch(/-127\.0\.0\.1_5000\/ns\/img_x-[0-9a-f]{16}$/);
    const long = cacheKeys(apptainer, `docker://r.example/${'a'.repeat(600)}:1`, [D1], runner).key;
    expect(long.length).toBeLessThanOrEqual(512);
    expect(long).not.toContain(',');
  });
});

describe('serviceAbsence', () => {
  const service = { ACTIONS_RESULTS_URL: 'https://results.example/', ACTIONS_RUNTIME_TOKEN: 't' };
  test('a runner with the service and its token can use it', () => {
    expect(serviceAbsence({ GITHUB_ACTIONS: 'true', ...service })).toBeUndefined();
  });
  test('the command line, a runner without the service, and a missing token each say why', () => {
    expect(serviceAbsence({})).toMatch(/not on GitHub Actions/);
    expect(serviceAbsence({ GITHUB_ACTIONS: 'true' })).toMatch(/no cache service .*GitHub Enterprise Server/);
    expect(serviceAbsence({ GITHUB_ACTIONS: 'true', ACTIONS_RESULTS_URL: 'https://results.example/' })).toMatch(/no ACTIONS_RUNTIME_TOKEN/);
  });
});

describe('blobCacheDir', () => {
  test('follows APPTAINER_CACHEDIR / SINGULARITY_CACHEDIR, else the home directory, as the builder does', () => {
    expect(blobCacheDir({ APPTAINER_CACHEDIR: '/mnt/c', HOME: '/home/r' }, apptainer)).toBe('/mnt/c/cache/blob');
    expect(blobCacheDir({ HOME: '/home/r' }, apptainer)).toBe('/home/r/.apptainer/cache/blob');
    expect(blobCacheDir({ SINGULARITY_CACHEDIR: '/mnt/s', HOME: '/home/r' }, singularity)).toBe('/mnt/s/cache/blob');
    expect(blobCacheDir({ HOME: '/home/r' }, singularity)).toBe('/home/r/.singularity/cache/blob');
  });
});

describe('restoreLayerCache without a cache service', () => {
  const attempt = async (setting: CacheSetting, env: NodeJS.ProcessEnv) => {
    const reporter = new CaptureReporter();
    const cache = await restoreLayerCache({ setting, env, builder: apptainer, sourceUri: NGC, sourceDigests: [D1], reporter });
    return { cache, lines: reporter.lines };
  };

  test('on a runner without the service (GHES): one line, and the build goes on without a cache', async () => {
    const { cache, lines } = await attempt('auto', { GITHUB_ACTIONS: 'true', HOME: '/home/r' });
    expect(cache).toBeUndefined();
    expect(lines).toEqual(['layer cache: not used, this runner offers no cache service (no ACTIONS_RESULTS_URL; GitHub Enterprise Server without Actions cache); layers are downloaded from the registry']);
  });

  test('cache: true on the command line warns once; auto there and false anywhere say nothing', async () => {
    const asked = await attempt('true', { HOME: '/home/r' });
    expect(asked.cache).toBeUndefined();
    expect(asked.lines).toEqual(['warning: layer cache: not used, not on GitHub Actions (no ACTIONS_RESULTS_URL); layers are downloaded from the registry']);
    expect((await attempt('auto', { HOME: '/home/r' })).lines).toEqual([]);
    // false: nothing said and nothing done, even where a service is (http://x/ would fail if it were asked).
    const off = await attempt('false', { GITHUB_ACTIONS: 'true', ACTIONS_RESULTS_URL: 'http://x/', ACTIONS_RUNTIME_TOKEN: 't' });
    expect(off).toEqual({ cache: undefined, lines: [] });
  });
});
