// Building as root through passwordless sudo when the step is not root (GitHub's hosted runners): what the
// builder may keep of the environment, and the places it writes, lent to root for the build and handed back to
// the step's user after it, whatever the outcome. Lending matters where root builds with --fakeroot (root
// without every capability): root then cannot enter the user's private directories, only its own.
import { mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../report/reporter.js';
import { runProcess } from '../util/process.js';
import type { AsRoot, BuilderInfo } from './builder.js';

/** The variables a build through sudo keeps: the builder's own settings, the temporary directory and proxies. */
export function sudoPreserved(env: NodeJS.ProcessEnv, builder: BuilderInfo): string[] {
  const wanted = (name: string) =>
    name.startsWith(builder.envPrefix) || ['TMPDIR', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'].includes(name);
  return Object.keys(env).filter((name) => wanted(name) && env[name] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)).sort();
}

/**
 * The builder's cache setting for a build through sudo: the user's (root's own would be another directory, unseen
 * by the step's layer cache and the stall watch). Apptainer keeps its cache in `CACHEDIR/cache`.
 */
export function rootCacheSetting(env: NodeJS.ProcessEnv, builder: BuilderInfo): { setting: string; cache: string } {
  const setting = env[`${builder.envPrefix}CACHEDIR`] ?? path.join(env.HOME ?? os.homedir(), builder.command === 'singularity' ? '.singularity' : '.apptainer');
  return { setting, cache: path.join(setting, 'cache') };
}

/** Makes `dirs` (creating them as the user first) root's for the build. */
export async function lendToRoot(dirs: string[]): Promise<void> {
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  await chown('0:0', dirs);
}

/** Gives what root wrote back to the step's user; a failure is reported, not fatal (the image is still usable). */
export async function handBack(asRoot: AsRoot, paths: string[], reporter: Reporter): Promise<void> {
  const present: string[] = [];
  for (const p of paths) if (await stat(p).then(() => true, () => false)) present.push(p);
  if (present.length === 0) return;
  const failed = await chown(`${asRoot.uid}:${asRoot.gid}`, present).then(() => undefined, (error: Error) => error.message);
  if (failed) reporter.warning(`could not hand ${present.join(', ')} back to uid ${asRoot.uid}: ${failed}`);
}

async function chown(owner: string, paths: string[]): Promise<void> {
  const run = await runProcess('sudo', ['-n', 'chown', '-R', owner, '--', ...paths]);
  if (run.code !== 0) throw new Error(`sudo chown ${owner} failed: ${run.tail.join(' ')}`);
}
