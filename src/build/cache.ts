// The layer cache: the builder's OCI blob cache (APPTAINER_CACHEDIR/cache/blob) restored before a build and saved
// after it through GitHub's cache service (@actions/cache), so a runner that starts empty does not download again
// the layers an earlier run already downloaded. Best effort throughout: a cache that is absent, slow or broken
// costs a download, never the build.
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CacheSetting } from '../config/config.js';
import type { Reporter } from '../report/reporter.js';
import { formatBytes } from '../report/summary.js';
import type { BuilderInfo } from './builder.js';

/** Bumped when what is cached changes shape, so old entries are no longer restored. */
const KEY_VERSION = 'v1';

export interface CacheKeys {
  /** The exact entry for these sources: builder, runner OS and architecture, source name and digests. */
  key: string;
  /** Prefixes tried in order when the exact key is missing: the same source name (an older tag or digest shares
   * its base layers), then any source built by this builder on this OS. */
  restoreKeys: string[];
}

/** What the restore found; `save` stores the directory after a successful build unless the exact key was hit. */
export interface LayerCache {
  dir: string;
  keys: CacheKeys;
  /** The key restored, exact or by prefix; undefined when nothing was restored. */
  restoredKey?: string;
  save(): Promise<void>;
}

/**
 * The builder's OCI blob cache, the part of its cache that holds downloaded layers, where the builder itself puts
 * it: `cache/blob` under `$APPTAINER_CACHEDIR` (`$SINGULARITY_CACHEDIR`), else under `~/.apptainer` (`~/.singularity`).
 */
export function blobCacheDir(env: NodeJS.ProcessEnv, builder: BuilderInfo): string {
  const dot = builder.command === 'singularity' ? '.singularity' : '.apptainer';
  const parent = env[`${builder.envPrefix}CACHEDIR`] ?? path.join(env.HOME ?? os.homedir(), dot);
  return path.join(parent, 'cache', 'blob');
}

/**
 * Cache keys for a build: `build-image-layers-v1-<builder>-<os>-<arch>-<source name>-<digests>`. The source
 * name is the last base's repository without tag or digest; the digest part changes whenever any base does.
 */
export function cacheKeys(builder: BuilderInfo, sourceUri: string, sourceDigests: string[], env: NodeJS.ProcessEnv): CacheKeys {
  const runner = `${env.RUNNER_OS ?? os.platform()}-${env.RUNNER_ARCH ?? os.arch()}`;
  const prefix = `build-image-layers-${KEY_VERSION}-${builder.product}-${runner}-`;
  const name = sourceName(sourceUri);
  const digests = createHash('sha256').update(sourceDigests.join('\n')).digest('hex').slice(0, 16);
  return { key: `${prefix}${name}-${digests}`, restoreKeys: [`${prefix}${name}-`, prefix] };
}

/** `docker://reg.example/ns/repo:tag@sha256:…` → `reg.example/ns/repo`, in characters a cache key accepts. */
function sourceName(uri: string): string {
  const ref = uri.replace(/^[a-z-]+:(\/\/)?/, '').replace(/@.*$/, '');
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const repo = colon > lastSlash && lastSlash >= 0 ? ref.slice(0, colon) : ref;
  return repo.replace(/[^A-Za-z0-9._/-]/g, '_').slice(0, 200) || 'local';
}

/** Why the cache service cannot be used here, or undefined when it can. */
export function serviceAbsence(env: NodeJS.ProcessEnv): string | undefined {
  const url = env.ACTIONS_RESULTS_URL || env.ACTIONS_CACHE_URL;
  if (!url && env.GITHUB_ACTIONS !== 'true') return 'not on GitHub Actions (no ACTIONS_RESULTS_URL)';
  if (!url) return 'this runner offers no cache service (no ACTIONS_RESULTS_URL; GitHub Enterprise Server without Actions cache)';
  if (!env.ACTIONS_RUNTIME_TOKEN) return 'no ACTIONS_RUNTIME_TOKEN in the environment';
  return undefined;
}

/** What restoring needs: the builder's environment (its cache directory), which builder, and what is built. */
interface RestoreArgs {
  env: NodeJS.ProcessEnv;
  builder: BuilderInfo;
  sourceUri: string;
  sourceDigests: string[];
  reporter: Reporter;
}

/**
 * Restores the layer cache for this build, or says once why it does not. Returns undefined when the cache is off
 * or unavailable. `@actions/cache` reads the service's address and token from `process.env`, which on a runner is
 * the environment the action was started with.
 */
export async function restoreLayerCache(args: RestoreArgs & { setting: CacheSetting }): Promise<LayerCache | undefined> {
  const { setting, env, reporter } = args;
  if (setting === 'false') return undefined;
  const absent = serviceAbsence(env);
  if (absent) {
    // `auto` on the command line is quiet: there is no cache service to miss. Anywhere else, say it once.
    if (setting === 'true') reporter.warning(`layer cache: not used, ${absent}; layers are downloaded from the registry`);
    else if (env.GITHUB_ACTIONS === 'true') reporter.info(`layer cache: not used, ${absent}; layers are downloaded from the registry`);
    return undefined;
  }
  return reporter.group('Restore layer cache', () => restore(args));
}

async function restore(args: RestoreArgs): Promise<LayerCache | undefined> {
  const { env, builder, reporter } = args;
  const lib = await import('@actions/cache');
  if (!lib.isFeatureAvailable()) {
    reporter.info('layer cache: not used, the Actions cache service is not available on this runner; layers are downloaded from the registry');
    return undefined;
  }
  const dir = blobCacheDir(env, builder);
  const held = await measure(path.join(dir, 'blobs'));
  if (held.files > 0) {
    // A runner that keeps its builder cache (self-hosted) has the layers already; restoring over it would replace
    // its index, and saving it would store whatever else it holds.
    reporter.info(`layer cache: ${dir} already holds ${held.files} blob(s), ${formatBytes(held.bytes)} (a runner that keeps its cache); used as it is, not restored over or saved`);
    return undefined;
  }
  const keys = cacheKeys(builder, args.sourceUri, args.sourceDigests, env);
  let restoredKey: string | undefined;
  try {
    restoredKey = await lib.restoreCache([dir], keys.key, keys.restoreKeys);
  } catch (error) {
    reporter.warning(`layer cache: restore failed (${(error as Error).message}); layers are downloaded from the registry`);
  }
  if (restoredKey) {
    const { files, bytes } = await measure(path.join(dir, 'blobs'));
    const how = restoredKey === keys.key ? 'exact match' : 'partial match: layers of an earlier build of this source or builder';
    reporter.info(`layer cache: restored ${files} blob(s), ${formatBytes(bytes)}, into ${dir} from ${restoredKey} (${how})`);
  } else {
    reporter.info(`layer cache: nothing restored for ${keys.key} or its prefixes; layers are downloaded from the registry`);
  }
  // The builder appends one index entry for each image it fetches; those after this mark are this build's.
  const mark = (await readIndex(dir).catch(() => undefined))?.manifests.length ?? 0;
  return {
    dir,
    keys,
    restoredKey,
    async save() {
      if (restoredKey === keys.key) {
        reporter.info(`layer cache: ${keys.key} is already saved; nothing to store`);
        return;
      }
      try {
        const pruned = await pruneToBuild(dir, mark);
        if (pruned > 0) reporter.info(`layer cache: left out ${pruned} blob(s) this build did not use (restored from an earlier one)`);
        const { files, bytes } = await measure(path.join(dir, 'blobs'));
        if (files === 0) {
          reporter.info(`layer cache: ${dir} holds no blobs; nothing to store`);
          return;
        }
        const id = await lib.saveCache([dir], keys.key);
        // saveCache reports its own failures (another job saving the same key, a service error) and returns -1.
        if (id !== -1) reporter.info(`layer cache: saved ${files} blob(s), ${formatBytes(bytes)}, as ${keys.key}`);
      } catch (error) {
        reporter.warning(`layer cache: save failed (${(error as Error).message}); the build is not affected`);
      }
    },
  };
}

interface OciIndex {
  manifests: { digest: string }[];
}

async function readIndex(dir: string): Promise<OciIndex | undefined> {
  const text = await readFile(path.join(dir, 'index.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const index = JSON.parse(text) as OciIndex;
  return Array.isArray(index.manifests) ? index : undefined;
}

/**
 * Keeps only the images this build fetched (index entries after `mark`) and the blobs they reference, so a
 * cache restored from an earlier build's entry does not carry that build's layers forward month after month.
 * Anything unexpected (no new entry, an unreadable manifest) leaves the directory as it is. Returns the number
 * of blobs removed.
 */
async function pruneToBuild(dir: string, mark: number): Promise<number> {
  const index = await readIndex(dir).catch(() => undefined);
  const used = index?.manifests.slice(mark) ?? [];
  if (!index || used.length === 0) return 0;
  const blobPath = (digest: string) => path.join(dir, 'blobs', ...digest.split(':'));
  const keep = new Set<string>();
  for (const { digest } of used) {
    const manifest = await readFile(blobPath(digest), 'utf8')
      .then((t) => JSON.parse(t) as { config?: { digest: string }; layers?: { digest: string }[] })
      .catch(() => undefined);
    if (!manifest?.config || !Array.isArray(manifest.layers)) return 0;
    for (const d of [digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) keep.add(d);
  }
  let removed = 0;
  for (const algorithm of await readdir(path.join(dir, 'blobs'))) {
    for (const hex of await readdir(path.join(dir, 'blobs', algorithm))) {
      if (keep.has(`${algorithm}:${hex}`)) continue;
      await rm(path.join(dir, 'blobs', algorithm, hex), { force: true });
      removed++;
    }
  }
  const unique = [...new Map(used.map((m) => [m.digest, m])).values()];
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ ...index, manifests: unique }));
  return removed;
}

/** Files and bytes under a directory (the OCI layout's `blobs/`), 0 when it does not exist. */
async function measure(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const st = await stat(path.join(entry.parentPath, entry.name)).catch(() => undefined);
    if (!st) continue;
    files++;
    bytes += st.size;
  }
  return { files, bytes };
}
