// A real OpenSSH sshd on a loopback port, logging in a dedicated non-root account (tests run as root, and root
// ignores file permissions, so permission failures need an ordinary user). Fails, never skips, when sshd is missing.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './registry.js';
import { requireTools, tempDir } from './tools.js';

/** The account sftp sessions log in as; created on first use (the test machines are disposable CI runners). */
export const SFTP_USER = 'bisftp';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  uid: number;
  gid: number;
  /** A directory owned by the sftp user, for staging and live dirs; with `chroot`, the account's `/` (root-owned: use its `lustre/share/img`). */
  root: string;
  /** The private key without a passphrase, and one protected by `passphrase`. */
  privateKey: string;
  encryptedKey: string;
  passphrase: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...`, as ssh-keyscan prints it. */
  knownHostsLine: string;
  /** `SHA256:...` of the host key, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  hostKeyType: string;
  hostKeyBase64: string;
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** `ForceCommand internal-sftp`: the account gets SFTP but no exec channel (no remote sha256sum). */
  sftpOnly?: boolean;
  /** The PATH of the account's sessions (sshd's `SetEnv`), e.g. a directory without `openssl`. */
  path?: string;
  /** sshd's `MaxSessions`: SSH sessions (SFTP or exec channels) one connection may open. Default 20. */
  maxSessions?: number;
  /**
   * `ChrootDirectory`: the account sees `root` as `/`, as a cluster's login node shows its shared file system, so
   * remote paths are `/lustre/share/img/...` rather than a temporary directory. The chroot lives under /srv (sshd
   * wants every component of its path owned by root and writable by no one else, which /tmp is not; and the
   * apptainer shim binds /srv, so a baseline read there runs) and
   * holds a static busybox as /bin/sh, with `sha256sum` and `dd` for the remote hash, and /dev/null.
   */
  chroot?: boolean;
}

/** A root-owned tree for `ChrootDirectory`, with a static busybox for the account's exec channels. */
function makeChroot(uid: number, gid: number): { dir: string; cleanup: () => void } {
  requireTools('busybox');
  mkdirSync('/srv/build-image', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync('/srv/build-image/sshd-chroot-');
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'tmp'), { mode: 0o1777 });
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  copyFileSync(execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim(), path.join(dir, 'bin/busybox'));
  chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'sha256sum', 'dd', 'cat']) symlinkSync('busybox', path.join(dir, 'bin', applet));
  // The commands redirect to /dev/null, as a real login node's chroot allows.
  mkdirSync(path.join(dir, 'dev'));
  execFileSync('mknod', ['-m', '666', path.join(dir, 'dev/null'), 'c', '1', '3'], { stdio: 'pipe' });
  mkdirSync(path.join(dir, 'lustre/share/img'), { recursive: true });
  chownSync(path.join(dir, 'lustre/share/img'), uid, gid);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function ensureUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, SFTP_USER], { encoding: 'utf8', stdio: 'pipe' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    // '*' rather than the default '!' so sshd does not treat the account as locked.
    execFileSync('useradd', ['-M', '-d', '/tmp', '-s', '/bin/sh', '-p', '*', SFTP_USER], { stdio: 'pipe' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on ${port}: ${log()}`);
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  requireTools('sshd', 'ssh-keygen');
  const { uid, gid } = ensureUser();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const { dir, cleanup } = tempDir('bi-sshd-');
  chmodSync(dir, 0o755);
  const keygen = (file: string, passphrase = '') =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'build-image-test', '-f', file], { stdio: 'pipe' });
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  const encryptedKey = path.join(dir, 'client_encrypted');
  const passphrase = 'correct horse battery staple 7';
  keygen(hostKey);
  keygen(clientKey);
  keygen(encryptedKey, passphrase);
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${clientKey}.pub`, 'utf8') + readFileSync(`${encryptedKey}.pub`, 'utf8'), { mode: 0o644 });
  const chroot = opts.chroot ? makeChroot(uid, gid) : undefined;
  const root = chroot ? chroot.dir : path.join(dir, 'root');
  if (!chroot) {
    mkdirSync(root);
    chownSync(root, uid, gid);
  }

  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorized}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `AllowUsers ${SFTP_USER}`,
      'LogLevel VERBOSE',
      'MaxStartups 100',
      `MaxSessions ${opts.maxSessions ?? 20}`,
      'Subsystem sftp internal-sftp',
      ...(opts.sftpOnly ? ['ForceCommand internal-sftp'] : []),
      ...(opts.path ? [`SetEnv PATH=${opts.path}`] : []),
      ...(chroot ? [`ChrootDirectory ${chroot.dir}`, 'SetEnv PATH=/bin'] : []),
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'sshd.log');
  const child = spawn('/usr/sbin/sshd', ['-D', '-f', config, '-E', logFile], { stdio: 'ignore' });
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  await waitForBanner(port, child, log);

  const [keyType, keyBase64] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`], { encoding: 'utf8' }).split(/\s+/)[1];
  return {
    host: '127.0.0.1',
    port,
    user: SFTP_USER,
    uid,
    gid,
    root,
    privateKey: readFileSync(clientKey, 'utf8'),
    encryptedKey: readFileSync(encryptedKey, 'utf8'),
    passphrase,
    knownHostsLine: `[127.0.0.1]:${port} ${keyType} ${keyBase64}`,
    fingerprint,
    hostKeyType: keyType,
    hostKeyBase64: keyBase64,
    log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      }
      cleanup();
      chroot?.cleanup();
    },
  };
}
