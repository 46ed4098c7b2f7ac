// The files that make a root file system an enroot image (doc/image-format.md of enroot 4.1.2): /etc/environment
// with the image's runtime environment, /etc/rc with the working directory and the command, and the empty
// /etc/rc.local that enroot's own `import` writes beside it. Written from what apptainer keeps in a SIF: the
// environment scripts in /.singularity.d/env, the runscript, and the OCI config object (its WorkingDir).
import { chmod, lstat, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runProcess } from '../util/process.js';
import { shellQuote } from '../util/shell.js';
import { UserError } from '../user-error.js';

/** The PATH apptainer starts a container's environment from (apptainer's env.DefaultPath). */
export const APPTAINER_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Variables a shell or apptainer's own scripts set that are no part of the image's environment. */
const SHELL_INTERNALS = new Set(['PWD', 'OLDPWD', 'SHLVL', '_', 'PS1']);
const APPTAINER_LIBS = '/.singularity.d/libs';

export class SqshConversionError extends UserError {
  override name = 'SqshConversionError';
}

/**
 * Evaluates the image's environment as apptainer does when a container starts: its /.singularity.d/env/*.sh
 * sourced in order by the image's own /bin/sh, from an empty environment with apptainer's default PATH. It runs
 * chrooted into the unpacked root so that a script which sources a file of the image (a conda profile) finds
 * it; unprivileged through a user namespace when this process is not root. Returns the exported variables
 * without the shell's own and apptainer's runtime additions (PS1, its libs directory on LD_LIBRARY_PATH).
 */
export async function imageEnvironment(root: string, signal?: AbortSignal): Promise<{ env: [string, string][]; dropped: string[] }> {
  const script = 'for f in /.singularity.d/env/*.sh; do if [ -f "$f" ]; then . "$f"; fi; done; exec env';
  const chroot = ['chroot', root, '/bin/sh', '-c', script];
  const [command, ...args] = process.getuid?.() === 0 ? chroot : ['unshare', '--user', '--map-root-user', ...chroot];
  const result = await runProcess(command, args, { env: { PATH: APPTAINER_DEFAULT_PATH }, signal, tailLines: 10 });
  if (result.code !== 0) {
    throw new SqshConversionError(
      `formats: evaluating the image's environment (/.singularity.d/env/*.sh with the image's /bin/sh and env) failed with exit code ${result.code}: ${result.tail.join(' | ')}`,
    );
  }
  return parseEnv(result.stdout);
}

/** `env` output: NAME=VALUE lines. A value with a newline cannot be told apart from the next line, nor can enroot's
 * line-based /etc/environment hold it: such variables are dropped and named. */
export function parseEnv(text: string): { env: [string, string][]; dropped: string[] } {
  const vars = new Map<string, string>();
  const dropped = new Set<string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) {
      if (last !== undefined && line !== '') dropped.add(last);
      continue;
    }
    last = m[1];
    vars.set(m[1], m[2]);
  }
  const env: [string, string][] = [];
  for (const [name, raw] of vars) {
    if (SHELL_INTERNALS.has(name) || dropped.has(name)) continue;
    const value = name === 'LD_LIBRARY_PATH' ? raw.split(':').filter((p) => p !== APPTAINER_LIBS).join(':') : raw;
    if (name === 'LD_LIBRARY_PATH' && value === '') continue;
    env.push([name, value]);
  }
  return { env, dropped: [...dropped] };
}

/** /etc/environment as enroot reads it: NAME="VALUE" lines, one pair of surrounding quotes stripped by enroot. */
export function environmentFile(env: [string, string][]): string {
  return env.map(([name, value]) => `${name}="${value}"\n`).join('');
}

/** /etc/rc as enroot's `import` writes it: working directory, /etc/rc.local, then the arguments or the default command. */
export function rcFile(workdir: string, command: string[], labels: Record<string, string> = {}): string {
  const comments = Object.entries(labels).map(([k, v]) => `# ${k} ${v.replace(/\n/g, ' ')}\n`);
  const dir = shellQuote(workdir);
  return [
    ...comments,
    ...(comments.length > 0 ? ['\n'] : []),
    `mkdir -p ${dir} 2> /dev/null\n`,
    `cd ${dir} && unset OLDPWD || exit 1\n`,
    '\n',
    'if [ -s /etc/rc.local ]; then\n',
    '    . /etc/rc.local\n',
    'fi\n',
    '\n',
    'if [ $# -gt 0 ]; then\n',
    '    exec "$@"\n',
    'else\n',
    `    exec ${command.map(shellQuote).join(' ')}\n`,
    'fi\n',
  ].join('');
}

const RC_LOCAL = '# This file is sourced by /etc/rc when the container starts.\n# It can be used to manipulate the entrypoint or the command of the container.\n';

/** The image's default command: its runscript when it has one (apptainer's `run`), else the OCI entrypoint and cmd. */
export async function defaultCommand(root: string, oci: OciConfig | undefined): Promise<string[]> {
  const runscript = await stat(path.join(root, '.singularity.d', 'runscript')).catch(() => undefined);
  if (runscript?.isFile()) return ['/.singularity.d/runscript'];
  const command = [...(oci?.Entrypoint ?? []), ...(oci?.Cmd ?? [])];
  return command.length > 0 ? command : ['/bin/sh'];
}

export interface OciConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
}

/**
 * Writes /etc/environment, /etc/rc and /etc/rc.local into the unpacked root. Files already there are replaced, never
 * written through: a symlink in the image must not point a write at the machine doing the conversion.
 */
export async function writeEnrootFiles(root: string, files: { environment: string; rc: string; workdir: string }): Promise<void> {
  const etc = path.join(root, 'etc');
  const etcStat = await lstat(etc).catch(() => undefined);
  if (etcStat && !etcStat.isDirectory()) {
    throw new SqshConversionError(`formats: the image's /etc is not a directory (${etcStat.isSymbolicLink() ? 'a symbolic link' : 'a file'}); cannot write enroot's /etc/environment and /etc/rc`);
  }
  if (!etcStat) await mkdir(etc, { mode: 0o755 });
  const mode = (await stat(etc)).mode & 0o7777;
  // An unprivileged unpack keeps a read-only /etc read-only for its new owner too.
  if ((mode & 0o200) === 0) await chmod(etc, mode | 0o200);
  try {
    for (const [name, text] of [['environment', files.environment], ['rc', files.rc], ['rc.local', RC_LOCAL]] as const) {
      const file = path.join(etc, name);
      await rm(file, { force: true, recursive: true });
      await writeFile(file, text, { flag: 'wx', mode: 0o644 });
    }
  } finally {
    if ((mode & 0o200) === 0) await chmod(etc, mode);
  }
  // enroot's import creates the working directory in the image too (a read-only start could not).
  await mkdirInRoot(root, files.workdir);
}

/** mkdir -p of an image path, one component at a time, stopping at anything that is not a plain directory. */
async function mkdirInRoot(root: string, imagePath: string): Promise<void> {
  let at = root;
  for (const part of imagePath.split('/').filter((p) => p !== '' && p !== '.' && p !== '..')) {
    at = path.join(at, part);
    const s = await lstat(at).catch(() => undefined);
    if (!s) await mkdir(at, { mode: 0o755 });
    else if (!s.isDirectory()) return;
  }
}
