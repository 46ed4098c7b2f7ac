// How the builder is invoked: its arguments, its environment, the build-args file, where it downloads layers.
import os from 'node:os';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import { rootCacheSetting } from './as-root.js';
import type { AsRoot, BuilderInfo } from './builder.js';

export function buildArgsFile(buildArgs: Record<string, string>): string {
  return Object.entries(buildArgs).map(([k, v]) => `${k}=${v}\n`).join('');
}

/** Where the builder downloads layers: its cache and temporary directories (as the shim and apptainer place them). */
export function pullDirs(env: NodeJS.ProcessEnv, builder: BuilderInfo): string[] {
  const prefix = builder.envPrefix;
  const cache = env[`${prefix}CACHEDIR`] ?? path.join(env.HOME ?? os.homedir(), builder.command === 'singularity' ? '.singularity' : '.apptainer', 'cache');
  return [...new Set([cache, env[`${prefix}TMPDIR`] ?? env.TMPDIR ?? os.tmpdir()])];
}

export function builderArgs(config: BuildConfig, buildArgs: Record<string, string>, fakeroot: boolean, recipe: string, output: string, argsFile: string): string[] {
  const args = ['build', '--force'];
  if (fakeroot) args.push('--fakeroot');
  if (config.registryInsecure) args.push('--no-https');
  if (Object.keys(buildArgs).length > 0) args.push('--build-arg-file', argsFile);
  if (config.compression !== 'gzip') args.push('--mksquashfs-args', `-comp ${config.compression}`);
  args.push(output, recipe);
  return args;
}

/** Credentials go to the builder through its environment, under the prefix it reads; through sudo, the cache too. */
export function builderEnv(env: NodeJS.ProcessEnv, builder: BuilderInfo, config: BuildConfig, asRoot?: AsRoot): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  if (config.registry) {
    out[`${builder.envPrefix}DOCKER_USERNAME`] = config.registry.username;
    out[`${builder.envPrefix}DOCKER_PASSWORD`] = config.registry.password;
  }
  if (asRoot) out[`${builder.envPrefix}CACHEDIR`] = rootCacheSetting(env, builder).setting;
  return out;
}
