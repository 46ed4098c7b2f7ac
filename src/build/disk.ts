// Fitting a build on the runner's disk. Apptainer keeps the downloaded layers in its cache directory, unpacks
// them into a sandbox in its temporary directory, packs that into a squashfs there and then writes the SIF beside
// `output`; an NGC PyTorch image (≈ 10 GB of layers) needs several times the ≈ 14 GB a hosted runner has free on
// its root file system, where both directories are by default. Before anything is pulled, the space a build
// needs is estimated from the compressed sizes of its layers, and both directories go to the file system with
// the most free space among the candidates (hosted Ubuntu runners have a large `/mnt`), or to `tmp-dir`.
import { constants } from 'node:fs';
import { access, mkdtemp, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../report/summary.js';
import { MANIFEST_TYPES, registryClient, type ImageRef, type ResolveOptions } from './source.js';
import { UserError } from '../user-error.js';

/**
 * Bytes on disk per byte of compressed layers, at the build's peak. Measured with apptainer 1.4.5 here
 * (`apptainer build --fakeroot` of `docker://` images from the loopback registry, APPTAINER_TMPDIR and
 * APPTAINER_CACHEDIR each on its own loop-mounted ext4, `df` sampled every 0.2 s during the build, the SIF's size
 * afterwards):
 *
 * | image | compressed layers | cache | temporary peak | SIF |
 * |---|---|---|---|---|
 * | Debian trixie + python3-torch 2.6 (the smoke suite's image as one gzip layer) | 310,707,210 B | 310,763,520 B (1.00×) | 1,261,322,240 B (4.06×) | 294,576,128 B (0.95×) |
 * | busybox (the tests' image) | 1,083,973 B | 1,097,728 B (1.01×) | 2,890,752 B (2.67×) | 1,081,344 B (1.00×) |
 *
 * The temporary peak is the unpacked sandbox (the torch image's root file system is 939,663,555 B, 3.0×) plus
 * the squashfs being written from it. The factors below are the larger of the two measurements, rounded up, the
 * temporary one with a tenth more for images whose files compress better than these (the sandbox grows with
 * the compression ratio). The tool itself, building the torch image with both directories on one 3 GB ext4,
 * reported a peak of 1,572,077,568 B (5.06× the layers; estimate 5.52×). NGC's images unpack to about twice
 * their layers, so this overestimates them: better a clear refusal on a disk that might just have done than a
 * build that fills it after an hour of pulling.
 */
export const FACTORS = { cache: 1.02, temporary: 4.5, sif: 1.0 } as const;

/** The environment variable that replaces the candidate directories (colon-separated), for tests and unusual machines. */
export const CANDIDATES_ENV = 'BUILD_IMAGE_TMP_CANDIDATES';

/** What a build pulls from, for sizing. */
export type SizedBase =
  | { kind: 'registry'; ref: ImageRef; shown: string }
  | { kind: 'file'; path: string; shown: string }
  /** A bootstrap agent that downloads packages (debootstrap, yum, ...): its size cannot be known beforehand. */
  | { kind: 'unknown'; shown: string };

export interface SpaceEstimate {
  /** Compressed bytes of everything that could be sized. */
  layers: number;
  /** Bases that could not be sized, and why. */
  unsized: string[];
  cache: number;
  temporary: number;
  sif: number;
}

/** The compressed size of each base (its layers and config, or the file), and what could not be sized. */
export async function estimateSpace(bases: SizedBase[], options: ResolveOptions = {}): Promise<SpaceEstimate> {
  let layers = 0;
  const unsized: string[] = [];
  for (const base of bases) {
    try {
      if (base.kind === 'registry') layers += await imageBytes(base.ref, options);
      else if (base.kind === 'file') layers += (await stat(base.path)).size;
      else unsized.push(`${base.shown} (its size is not known before it runs)`);
    } catch (error) {
      unsized.push(`${base.shown} (${(error as Error).message})`);
    }
  }
  return {
    layers,
    unsized,
    cache: Math.ceil(layers * FACTORS.cache),
    temporary: Math.ceil(layers * FACTORS.temporary),
    sif: Math.ceil(layers * FACTORS.sif),
  };
}

interface Manifest {
  manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
  layers?: { size?: number }[];
  config?: { size?: number };
}

/** The layers and config of an image for this machine's platform, as its manifest (or index) lists them. */
async function imageBytes(ref: ImageRef, options: ResolveOptions): Promise<number> {
  const client = registryClient(ref, options);
  const get = async (reference: string): Promise<Manifest> => {
    const response = await client.request(`manifests/${reference}`, { accept: MANIFEST_TYPES });
    if (!response.ok) throw new Error(`HTTP ${response.status} for its manifest`);
    return (await response.json()) as Manifest;
  };
  let manifest = await get(ref.digest ?? ref.tag ?? 'latest');
  if (manifest.manifests) {
    const arch = ({ x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
    const entry = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch);
    if (!entry) throw new Error(`no linux/${arch} image in its index`);
    manifest = await get(entry.digest);
  }
  if (!Array.isArray(manifest.layers)) throw new Error('its manifest lists no layers');
  return manifest.layers.reduce((sum, l) => sum + (l.size ?? 0), 0) + (manifest.config?.size ?? 0);
}

export interface Candidate {
  dir: string;
  /** Free bytes for an unprivileged writer (statfs bavail). */
  free: number;
  device: number;
  /** What the build would need on this file system. */
  needed: number;
}

/** The directories to choose among: `tmp-dir` alone when given, else the runner's temporary directory, the system's and `/mnt`. */
export function candidateDirs(env: NodeJS.ProcessEnv, tmpDir: string | undefined): { dirs: string[]; from: string } {
  if (tmpDir) return { dirs: [tmpDir], from: 'tmp-dir' };
  const listed = env[CANDIDATES_ENV];
  if (listed) return { dirs: listed.split(':').filter(Boolean), from: CANDIDATES_ENV };
  return { dirs: [env.RUNNER_TEMP, env.TMPDIR || os.tmpdir(), '/mnt'].filter((d): d is string => !!d), from: 'RUNNER_TEMP, TMPDIR and /mnt' };
}

/**
 * Each candidate's free space and what the build needs there: cache and temporary files, plus the SIF when
 * `output` is on the same file system. A candidate that is missing, not writable or on a shared file system (unless
 * `anyFileSystem`: the user named it) is skipped, with the reason.
 */
export async function measureCandidates(
  dirs: string[],
  estimate: SpaceEstimate,
  output: string,
  options: { anyFileSystem?: boolean } = {},
): Promise<{ usable: Candidate[]; skipped: string[] }> {
  const outputDevice = await stat(path.dirname(output)).then((s) => s.dev, () => -1);
  const usable: Candidate[] = [];
  const skipped: string[] = [];
  for (const dir of dirs) {
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error('not a directory');
      await access(dir, constants.W_OK).catch(() => {
        throw new Error('not writable');
      });
      // Two candidates on one file system are one choice: the first listed stands for it.
      if (usable.some((c) => c.device === st.dev)) continue;
      const fs = await statfs(dir);
      const network = NETWORK_FS[fs.type];
      if (network && !options.anyFileSystem) throw new Error(`a ${network} file system (the sandbox needs local ownership and speed)`);
      const needed = estimate.cache + estimate.temporary + (st.dev === outputDevice ? estimate.sif : 0);
      usable.push({ dir, free: fs.bavail * fs.bsize, device: st.dev, needed });
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      skipped.push(`${dir}: ${e.code === 'ENOENT' ? 'does not exist' : e.message}`);
    }
  }
  return { usable, skipped };
}

/**
 * Shared file systems a `/mnt` or a temporary directory may be on (statfs magic numbers, linux/magic.h and the
 * file systems' sources): unpacking a sandbox there fails under fakeroot (ownership) or crawls, so they are not
 * chosen automatically; `tmp-dir` can still name one.
 */
const NETWORK_FS: Record<number, string> = {
  0x6969: 'NFS',
  0xff534d42: 'CIFS',
  0xfe534d42: 'SMB2',
  0x65735546: 'FUSE',
  0x0bd00bd0: 'Lustre',
  0x47504653: 'GPFS',
  0x19830326: 'BeeGFS',
  0x00c36400: 'CephFS',
};

/** An expected failure: not enough space anywhere. Its message has the numbers. */
export class DiskSpaceError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'DiskSpaceError';
  }
}

/**
 * Of the candidates the build fits on, the one with the most free space (the SIF counts only where `output` is,
 * so the emptiest file system need not be one that fits); else an error with every candidate's numbers.
 */
export function chooseCandidate(usable: Candidate[], skipped: string[], estimate: SpaceEstimate, from: string): Candidate {
  const best = usable.filter((c) => c.free >= c.needed).sort((a, b) => b.free - a.free)[0];
  if (best) return best;
  const each = usable.map((c) => `${c.dir}: ${formatBytes(c.free)} free, ${formatBytes(c.needed)} needed`);
  const lines = [
    `not enough disk space for this build: it needs ${describeEstimate(estimate)}.`,
    ...(each.length ? [`Free space where it could go (${from}): ${each.join('; ')}.`] : [`No usable directory (${from}).`]),
    ...(skipped.length ? [`Skipped: ${skipped.join('; ')}.`] : []),
    'Nothing was pulled. Set tmp-dir to a directory on a larger file system, or free space.',
  ];
  return failWith(lines.join('\n'));
}

function failWith(message: string): never {
  throw new DiskSpaceError(message);
}

export function describeEstimate(e: SpaceEstimate): string {
  return (
    `${formatBytes(e.cache + e.temporary)} for the layer cache and temporary files ` +
    `(${formatBytes(e.layers)} of compressed layers: ×${FACTORS.cache} for the layer cache, ×${FACTORS.temporary} for the unpacked sandbox and squashfs)` +
    ` and ${formatBytes(e.sif)} for the SIF beside output` +
    (e.unsized.length ? `; not counted: ${e.unsized.join(', ')}` : '')
  );
}

export interface DiskPlan {
  /** The chosen directory (a candidate or `tmp-dir`). */
  root: string;
  estimate: SpaceEstimate;
  /** Free bytes there before the build. */
  free: number;
  /** What the build needs there: cache and temporary files, and the SIF when `output` is on that file system. */
  needed: number;
  /** This run's temporary directory under `root`, removed after the build. */
  temporary: string;
  /** The builder's cache under `root`, kept for the next build on this machine. */
  cache: string;
  /** The variables that point the builder there. */
  env: Record<string, string>;
}

/**
 * Sizes the build, chooses where its cache and temporary files go and creates the directories there. Throws a
 * DiskSpaceError, before anything is pulled, when no candidate has the room.
 */
export async function planDisk(options: {
  bases: SizedBase[];
  output: string;
  tmpDir?: string;
  env: NodeJS.ProcessEnv;
  /** The builder's command (`apptainer`, `singularity`) and the prefix of the variables it reads. */
  builder: { command: string; envPrefix: string };
  resolve: ResolveOptions;
  say: (line: string) => void;
}): Promise<DiskPlan> {
  const estimate = await estimateSpace(options.bases, options.resolve);
  options.say(`space needed: ${describeEstimate(estimate)}`);
  const { dirs, from } = candidateDirs(options.env, options.tmpDir);
  const { usable, skipped } = await measureCandidates(dirs, estimate, options.output, { anyFileSystem: !!options.tmpDir });
  for (const c of usable) options.say(`candidate ${c.dir}: ${formatBytes(c.free)} free, ${formatBytes(c.needed)} needed`);
  for (const s of skipped) options.say(`candidate skipped: ${s}`);
  const chosen = chooseCandidate(usable, skipped, estimate, from);
  // The builder creates its cache directory when it first writes there. A cache directory the environment names
  // (a self-hosted runner's kept cache, a restored one) stays where it is; only the temporary directory moves.
  const given = options.env[`${options.builder.envPrefix}CACHEDIR`] || undefined;
  const cache = given ?? path.join(chosen.dir, 'build-image-cache', options.builder.command);
  // Named like the run's other temporary directory, so that a run that dies leaves nothing the next one keeps.
  const temporary = await mkdtemp(path.join(chosen.dir, `build-image-${process.pid}-`));
  options.say(`${options.builder.envPrefix}TMPDIR=${temporary} (${options.tmpDir ? 'tmp-dir' : 'the most free space'}), ${options.builder.envPrefix}CACHEDIR=${cache}${given ? ' (from the environment)' : ''}`);
  return {
    root: chosen.dir,
    estimate,
    free: chosen.free,
    needed: chosen.needed,
    temporary,
    cache,
    env: { [`${options.builder.envPrefix}TMPDIR`]: temporary, ...(given ? {} : { [`${options.builder.envPrefix}CACHEDIR`]: cache }) },
  };
}

/** Samples a file system's used space while a build runs: how much it grew at most. */
export class DiskWatch {
  private timer?: NodeJS.Timeout;
  private start?: number;
  private sampling?: Promise<void>;
  peak = 0;

  constructor(
    private readonly dir: string,
    private readonly intervalMs = 250,
  ) {}

  async begin(): Promise<void> {
    this.start = await this.used();
    this.timer = setInterval(() => {
      this.sampling ??= this.sample().finally(() => (this.sampling = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops sampling; takes one last sample (a short build may end between two). */
  async end(): Promise<number> {
    clearInterval(this.timer);
    await this.sampling;
    await this.sample();
    return this.peak;
  }

  private async sample(): Promise<void> {
    if (this.start === undefined) return;
    const used = await this.used().catch(() => undefined);
    if (used !== undefined) this.peak = Math.max(this.peak, used - this.start);
  }

  private async used(): Promise<number> {
    const fs = await statfs(this.dir);
    return (fs.blocks - fs.bfree) * fs.bsize;
  }
}
