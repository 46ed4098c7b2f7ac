// Which builder runs, which version it is, which environment prefix it reads, and whether it needs
// --fakeroot (build) or --userns (exec): root on some CI machines lacks capabilities apptainer asks for.
import { readFile } from 'node:fs/promises';
import type { Builder, Fakeroot, Sudo } from '../config/config.js';
import { findExecutable, runProcess } from '../util/process.js';
import { UserError } from '../user-error.js';

export interface BuilderInfo {
  /** `apptainer` or `singularity`, as invoked. */
  command: string;
  path: string;
  /** What the binary says it is: `apptainer`, `singularity-ce`, `singularity`. */
  product: string;
  version: string;
  /** Environment variable prefix the builder reads: `APPTAINER_` or `SINGULARITY_` (`ENROOT_` for enroot; U2CB's
   * service builds with Apptainer, so `APPTAINER_`). */
  envPrefix: 'APPTAINER_' | 'SINGULARITY_' | 'ENROOT_';
}

/** The builders that are not apptainer or singularity run here: enroot, and the U2CB service's client. */
export function isServiceBuilder(choice: Builder): choice is 'enroot' | 'u2cb' {
  return choice === 'enroot' || choice === 'u2cb';
}

export class BuilderNotFoundError extends UserError {
  override name = 'BuilderNotFoundError';
}

/** Finds the builder on `envPath` and asks its version, through sudo when it will run as root (`asRoot`). */
export async function detectBuilder(choice: Builder, envPath?: string, asRoot?: AsRoot): Promise<BuilderInfo> {
  if (isServiceBuilder(choice)) return detectOther(choice, envPath);
  const candidates = choice === 'auto' ? ['apptainer', 'singularity'] : [choice];
  for (const command of candidates) {
    const found = await findExecutable(command, envPath);
    if (!found) continue;
    const result = await runProcess(found, ['--version'], { sudo: asRoot ? { preserveEnv: [] } : undefined });
    if (result.code !== 0) {
      const said = result.tail.slice(-3).join(' ').trim();
      const hint = /permission denied|not permitted|setuid|capabilit|unprivileged|user namespace/i.test(said)
        ? 'it cannot run as this user: run the step as root, allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1), or install apptainer-suid'
        : `check the installation at ${found} (it should print its version), or set builder to the other one`;
      throw new BuilderNotFoundError(`builder: ${found} cannot start (\`${command} --version\` exited ${result.code}${said ? `: ${said}` : ''}); ${hint}`);
    }
    const { product, version } = parseVersion(result.stdout);
    return {
      command,
      path: found,
      product,
      version,
      envPrefix: product === 'apptainer' ? 'APPTAINER_' : 'SINGULARITY_',
    };
  }
  const what = choice === 'auto' ? 'neither apptainer nor singularity' : choice;
  throw new BuilderNotFoundError(
    `builder: ${what} found on PATH; install Apptainer (https://apptainer.org/docs/admin/main/installation.html) or set builder`,
  );
}

const INSTALL: Record<'enroot' | 'u2cb', string> = {
  enroot: 'install enroot (https://github.com/NVIDIA/enroot/blob/main/doc/installation.md; on a root runner, scripts/provision-enroot.sh), or set builder to apptainer',
  u2cb: "install the centre's u2cb client and put it on PATH, or set builder to apptainer",
};

/** enroot (its `enroot version`) or the U2CB client (which has no version command: the service decides). */
async function detectOther(choice: 'enroot' | 'u2cb', envPath?: string): Promise<BuilderInfo> {
  const found = await findExecutable(choice, envPath);
  if (!found) throw new BuilderNotFoundError(`builder: ${choice} is not installed (not found on PATH); ${INSTALL[choice]}`);
  if (choice === 'u2cb') return { command: 'u2cb', path: found, product: 'u2cb', version: 'service', envPrefix: 'APPTAINER_' };
  const result = await runProcess(found, ['version']);
  const version = result.stdout.trim().split('\n')[0] ?? '';
  if (result.code !== 0 || !/^\d+\.\d+/.test(version)) {
    throw new BuilderNotFoundError(`builder: ${found} cannot start (\`enroot version\` exited ${result.code}: ${result.tail.slice(-3).join(' ').trim()}); check the installation`);
  }
  return { command: 'enroot', path: found, product: 'enroot', version, envPrefix: 'ENROOT_' };
}

/** `apptainer version 1.4.5`, `singularity-ce version 4.1.2`, `singularity version 3.8.7-1.el7`. */
export function parseVersion(text: string): { product: string; version: string } {
  const m = /^\s*([a-z-]+) version (\S+)/m.exec(text);
  if (!m) return { product: 'unknown', version: text.trim().split('\n')[0] ?? '' };
  return { product: m[1], version: m[2] };
}

export interface Privileges {
  uid: number;
  /** Whether the effective capability set holds every capability the kernel knows. */
  fullCapabilities: boolean;
  capEff: bigint;
}

export async function readPrivileges(asRoot?: AsRoot): Promise<Privileges> {
  const uid = asRoot ? 0 : (process.getuid?.() ?? -1);
  let capEff = 0n;
  let fullCapabilities = false;
  try {
    // Through sudo, what counts is root's capabilities, as a process started by sudo sees them.
    const status = asRoot ? (await runProcess('sudo', ['-n', 'cat', '/proc/self/status'])).stdout : await readFile('/proc/self/status', 'utf8');
    const lastCap = Number((await readFile('/proc/sys/kernel/cap_last_cap', 'utf8')).trim());
    capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
    fullCapabilities = hasAllCapabilities(capEff, lastCap);
  } catch {
    // Not Linux or /proc unreadable: treat as unprivileged, the safe assumption.
  }
  return { uid, fullCapabilities, capEff };
}

export function hasAllCapabilities(capEff: bigint, lastCap: number): boolean {
  const all = (1n << BigInt(lastCap + 1)) - 1n;
  return (capEff & all) === all;
}

/** How the builder runs as root when the step is not root: through passwordless sudo. */
export interface AsRoot {
  /** The step's user and group, to whom the image is handed back. */
  uid: number;
  gid: number;
}

/**
 * Decides whether to build through sudo: `auto` when the step is not root and `sudo -n true` works (passwordless
 * sudo, as on GitHub's hosted runners); `true` requires it; `false` never.
 */
export async function useSudo(choice: Sudo): Promise<{ asRoot?: AsRoot; reason: string }> {
  const uid = process.getuid?.() ?? -1;
  if (choice === 'false') return { reason: 'sudo: false' };
  if (uid === 0) return { reason: 'already root' };
  const check = await runProcess('sudo', ['-n', 'true']).catch((error: Error) => ({ code: 127, tail: [error.message] }));
  if (check.code === 0) return { asRoot: { uid, gid: process.getgid?.() ?? uid }, reason: 'not root, passwordless sudo works' };
  const said = check.tail.join(' ').trim() || `exit ${check.code}`;
  if (choice === 'true') {
    throw new BuilderNotFoundError(`sudo: true, but \`sudo -n true\` failed (${said}); allow this user passwordless sudo, or set sudo to auto to build as this user`);
  }
  return { reason: `not root, and \`sudo -n true\` failed (${said})` };
}

/** Apptainer running as root asks for every capability; root without them must build with --fakeroot. */
export function useFakeroot(choice: Fakeroot, privileges: Privileges): { fakeroot: boolean; reason: string } {
  if (choice === 'true') return { fakeroot: true, reason: 'fakeroot: true' };
  if (choice === 'false') return { fakeroot: false, reason: 'fakeroot: false' };
  if (privileges.uid !== 0) return { fakeroot: true, reason: 'not running as root' };
  if (!privileges.fullCapabilities) {
    return {
      fakeroot: true,
      reason: `root lacks capabilities apptainer requests (CapEff ${privileges.capEff.toString(16).padStart(16, '0')})`,
    };
  }
  return { fakeroot: false, reason: 'root with full capabilities' };
}

/** Exec-style calls (`exec`, `run`, `inspect` of a running image) need --userns where root lacks capabilities. */
export function execNeedsUserns(privileges: Privileges): boolean {
  return privileges.uid === 0 && !privileges.fullCapabilities;
}
