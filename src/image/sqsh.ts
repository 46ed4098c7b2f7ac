// SIF → enroot image (.sqsh): the SIF's squashfs root partition, found with the SIF reader and unpacked from its
// byte range (`unsquashfs -o OFFSET`), gains enroot's /etc/environment and /etc/rc (src/image/enroot-config.ts) and
// is packed again with the squashfs options enroot itself uses, so the file runs under `enroot create` and
// `srun --container-image` (pyxis) exactly like one `enroot import` made. The already built root is reused: no
// second pull or layer unpack.
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openFile, readSifFile, type SifInfo } from './sif.js';
import {
  defaultCommand,
  environmentFile,
  imageEnvironment,
  rcFile,
  SqshConversionError,
  writeEnrootFiles,
  type OciConfig,
} from './enroot-config.js';
import { runProcess } from '../util/process.js';
import { sha256File } from '../util/hash.js';

export { SqshConversionError } from './enroot-config.js';

/** enroot 4.1.2's default ENROOT_SQUASH_OPTIONS (enroot.in); the variable overrides it as it does for enroot. */
export const ENROOT_SQUASH_OPTIONS = '-comp lzo -noD -exit-on-error';


export interface SqshOptions {
  sif: string;
  /** The .sqsh to write; replaced only once the new one is complete. */
  output: string;
  /** Where to unpack the root (it needs the image's unpacked size); the system temporary directory by default. */
  tmpDir?: string;
  /** For what would surprise a user (variables that cannot be carried over). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** The environment ENROOT_SQUASH_OPTIONS and ENROOT_MAX_PROCESSORS are read from, as enroot reads them. */
  env?: NodeJS.ProcessEnv;
}

export interface SqshResult {
  path: string;
  sha256: string;
  size: number;
  /** The variables written to /etc/environment, in order. */
  environment: [string, string][];
  workdir: string;
  command: string[];
}

export async function convertSifToSqsh(options: SqshOptions): Promise<SqshResult> {
  const { sif, output, signal } = options;
  const info = await readSifFile(sif);
  const primary = info.primary;
  if (!primary || primary.fsType !== 'Squashfs') {
    throw new SqshConversionError(`formats: ${sif} has no squashfs root partition (${primary ? `its primary partition is ${primary.fsType}` : 'no primary partition'}); sqsh needs one`);
  }
  const oci = await ociConfig(sif, info);
  const work = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'build-image-sqsh-'));
  const partial = `${output}.partial`;
  try {
    const root = path.join(work, 'root');
    const unpack = await runProcess('unsquashfs', ['-no-progress', '-quiet', ...xattrOption(), '-d', root, '-o', String(primary.offset), sif], { signal, tailLines: 10 });
    checkExit(unpack, signal, `unsquashfs of ${sif}'s root partition (offset ${primary.offset})`);

    const { env, dropped } = await imageEnvironment(root, signal);
    if (dropped.length > 0) options.log?.(`sqsh: not carried into /etc/environment (a value with a newline, which enroot's line-based file cannot hold): ${dropped.join(', ')}`);
    const workdir = oci?.WorkingDir || '/';
    const command = await defaultCommand(root, oci);
    await writeEnrootFiles(root, { environment: environmentFile(env), rc: rcFile(workdir, command), workdir });

    await rm(partial, { force: true });
    const pack = await runProcess('mksquashfs', [root, partial, ...squashArgs(options.env ?? process.env)], { signal, tailLines: 10 });
    checkExit(pack, signal, 'mksquashfs');
    await rename(partial, output);
    const [sha256, { size }] = await Promise.all([sha256File(output), stat(output)]);
    return { path: output, sha256, size, environment: env, workdir, command };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** mksquashfs's options as enroot's own import passes them: `-all-root`, its processor count, its squash options. */
export function squashArgs(env: NodeJS.ProcessEnv): string[] {
  const processors = env.ENROOT_MAX_PROCESSORS?.trim() || String(os.availableParallelism());
  const squash = (env.ENROOT_SQUASH_OPTIONS ?? ENROOT_SQUASH_OPTIONS).split(/\s+/).filter(Boolean);
  return ['-noappend', '-all-root', '-no-progress', '-quiet', '-processors', processors, ...squash];
}

/** Unprivileged, only the user.* extended attributes can be set while unpacking. */
function xattrOption(): string[] {
  return process.getuid?.() === 0 ? [] : ['-user-xattrs'];
}

function checkExit(result: { code: number; tail: string[] }, signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new SqshConversionError('formats: the .sqsh conversion was cancelled');
  if (result.code !== 0) throw new SqshConversionError(`formats: ${what} failed with exit code ${result.code}: ${result.tail.join(' | ')}`);
}

/** The OCI image config apptainer keeps as the "oci-config.json" object (images built from an OCI source). */
async function ociConfig(sif: string, info: SifInfo): Promise<OciConfig | undefined> {
  const descriptor = info.descriptors.find((d) => d.type === 'JSON.Generic' && d.name === 'oci-config.json');
  if (!descriptor || descriptor.size > 1024 * 1024) return undefined;
  const source = await openFile(sif);
  try {
    const parsed = JSON.parse(Buffer.from(await source.read(descriptor.offset, descriptor.size)).toString('utf8')) as Record<string, unknown>;
    const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);
    return {
      Entrypoint: strings(parsed?.Entrypoint),
      Cmd: strings(parsed?.Cmd),
      WorkingDir: typeof parsed?.WorkingDir === 'string' ? parsed.WorkingDir : undefined,
    };
  } catch {
    return undefined;
  } finally {
    await source.close();
  }
}
