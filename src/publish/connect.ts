// Opens a verified SFTP session to the cluster: the host key is checked before the client authenticates,
// network failures are retried with backoff, and the key and passphrase stay in memory and masked.
import { Client as SshClient, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { parseKnownHosts, verifyHostKey, type HostKeyVerdict } from './known-hosts.js';
import { openTunnel, TunnelError } from './proxy-tunnel.js';
import type { SshProxy } from './proxy-url.js';
import { UserError } from '../user-error.js';
import { sleep } from '../util/sleep.js';

export interface SftpTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  passphrase?: string;
  knownHosts?: string;
  fingerprint?: string;
  /** `sftp-proxy`: the connection goes through this HTTP CONNECT or SOCKS5 proxy. */
  proxy?: SshProxy;
}

export interface ConnectOptions {
  reporter?: Reporter;
  /** Further attempts after a network failure (not after an authentication or host-key failure). Default 3. */
  retries?: number;
  /** First backoff delay; doubled each retry. Default 1000 ms. */
  retryDelayMs?: number;
  /** Handshake timeout. Default 20 s. */
  readyTimeoutMs?: number;
  /** SSH keepalive interval. Default 10 s (a dead link is noticed after 3 unanswered ones). */
  keepaliveIntervalMs?: number;
  signal?: AbortSignal;
  /**
   * How many SFTP sessions to open at once when the connection is ready, told the round trip that authentication
   * measured: a long link's channels then open together with the first one instead of after it. Default: one.
   */
  sessions?: (handshakeRttMs: number) => number;
}

/** The server's host key was refused; never retried. */
export class HostKeyError extends UserError {
  constructor(readonly verdict: Extract<HostKeyVerdict, { ok: false }>) {
    super(verdict.message);
    this.name = 'HostKeyError';
  }
}

/** A failure to connect, authenticate or complete a remote operation, with a message a user can act on. */
export class SftpError extends UserError {
  constructor(
    message: string,
    readonly kind: 'network' | 'auth' | 'remote' | 'config' = 'remote',
  ) {
    super(message);
    this.name = 'SftpError';
  }
}

export interface SftpConnection {
  readonly sftp: SFTPWrapper;
  readonly ssh: SshClient;
  /** How the host key was trusted. */
  readonly hostKey: Extract<HostKeyVerdict, { ok: true }>;
  /** Runs a command over an SSH exec channel; rejects when the account does not allow exec. */
  exec(command: string, timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /**
   * Opens one more SFTP session (channel) on this connection, for writing in parallel; rejects when the server
   * refuses another session (OpenSSH's `MaxSessions`). A session closing alone does not close the connection.
   */
  openSftp(): Promise<SFTPWrapper>;
  /**
   * The round trip in ms, measured while the SFTP session opened: a third of the time its three exchanges took
   * (channel open, subsystem request, version), so the upload's channel count costs no request of its own.
   */
  readonly sessionRttMs: number;
  /**
   * The round trip in ms, measured before the first session opened: a third of the time authentication took
   * (service request, key check, signed request), the server's checking of the key included.
   */
  readonly handshakeRttMs: number;
  /**
   * Takes up to `n` of the sessions opened beside the first one (`ConnectOptions.sessions`) and closes the rest;
   * `refused` says why the server refused any of them (OpenSSH's `MaxSessions`).
   */
  takeSpare(n: number): Promise<{ sftps: SFTPWrapper[]; refused?: unknown }>;
  /** Resolves once the connection has been closed (by `end` or by the network). */
  readonly closed: Promise<void>;
  isOpen(): boolean;
  end(): Promise<void>;
}

const EMITTER_METHODS = new Set<string | symbol>(['on', 'once', 'off', 'addListener', 'removeListener', 'prependListener', 'prependOnceListener', 'emit', 'removeAllListeners']);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN']);

/** Whether an error is a transient network failure (worth reconnecting), as opposed to auth, host key, or server refusal. */
export function isNetworkError(error: unknown): boolean {
  if (error instanceof HostKeyError) return false;
  if (error instanceof TunnelError) return error.network;
  if (error instanceof SftpError) return error.kind === 'network';
  const e = error as { code?: unknown; level?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e?.level === 'client-socket' || e?.level === 'client-timeout') return true;
  const msg = String(e?.message ?? '');
  return /No response from server|Not connected|connection (lost|closed|reset)|Connection lost before handshake|Unexpected (end|close) event|ECONNRESET|socket hang up|Timed out while waiting for handshake|Keepalive timeout|No SFTP connection/i.test(msg);
}

export async function connectSftp(target: SftpTarget, opts: ConnectOptions = {}): Promise<SftpConnection> {
  const reporter = opts.reporter;
  reporter?.setSecret(target.privateKey);
  if (target.passphrase) reporter?.setSecret(target.passphrase);
  if (target.proxy?.password) reporter?.setSecret(target.proxy.password);
  if (target.knownHosts) for (const note of parseKnownHosts(target.knownHosts).notes) reporter?.warning(note);
  const retries = opts.retries ?? 3;
  let delay = opts.retryDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce(target, opts);
    } catch (error) {
      if (!isNetworkError(error) || attempt >= retries || opts.signal?.aborted) throw toUserError(error, target);
      reporter?.info(`connection to ${target.host}:${target.port} failed (${describe(error)}); retrying in ${(delay / 1000).toFixed(1)} s (${attempt + 1}/${retries})`);
      // A cancelled run does not retry (not a network error).
      if (!(await sleep(delay, opts.signal))) throw new SftpError('cancelled');
      delay *= 2;
    }
  }
}

function describe(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' && !String(e.message).includes(e.code) ? `${e.code}: ${String(e.message)}` : String(e?.message ?? error);
}

/** Rewrites library errors into messages that say what to do, and never carry key material. */
function toUserError(error: unknown, target: SftpTarget): Error {
  if (error instanceof HostKeyError || error instanceof SftpError) return error;
  if (error instanceof TunnelError) return new SftpError(error.message, error.network ? 'network' : 'remote');
  const where = `${target.username}@${target.host}:${target.port}`;
  const e = error as { level?: unknown; message?: unknown };
  const msg = String(e?.message ?? error);
  if (e?.level === 'client-authentication' || /All configured authentication methods failed/i.test(msg)) {
    return new SftpError(`authentication failed for ${where}: the server did not accept sftp-private-key (check that its public key is in the account's authorized_keys)`, 'auth');
  }
  if (/privateKey|passphrase|Encrypted private|Unsupported key format|Cannot parse/i.test(msg)) {
    return new SftpError(`sftp-private-key could not be used: ${scrub(msg, target)} (check the key format and sftp-passphrase)`, 'config');
  }
  return new SftpError(`cannot connect to ${where}: ${scrub(describe(error), target)}`, isNetworkError(error) ? 'network' : 'remote');
}

function scrub(text: string, target: SftpTarget): string {
  let out = text;
  for (const s of [target.privateKey, target.passphrase]) if (s && s.length >= 3) out = out.split(s).join('***');
  return out;
}

/**
 * Connects and opens the SFTP subsystem with ssh2's own client: the transfer needs the raw `SFTPWrapper` (many
 * requests in flight, its own resume logic) and the SSH connection (exec for the remote hash), which a wrapper
 * library would only hide.
 */
function openSession(
  ssh: SshClient,
  config: ConnectConfig,
  sessions: ConnectOptions['sessions'],
): Promise<{ sftp: SFTPWrapper; rttMs: number; handshakeRttMs: number; spare: Promise<{ sftps: SFTPWrapper[]; refused?: unknown }> }> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      ssh.off('error', fail);
      ssh.off('close', closedEarly);
      reject(error);
    };
    const closedEarly = () => fail(new SftpError('the connection closed before the SFTP session opened', 'network'));
    ssh.on('error', fail);
    ssh.once('close', closedEarly);
    // ssh2 asks for the user-auth service as the key exchange completes: from here to 'ready' are three exchanges.
    let kexDone: number | undefined;
    ssh.once('handshake', () => (kexDone = performance.now()));
    ssh.once('ready', () => {
      const asked = performance.now();
      const handshakeRttMs = kexDone === undefined ? undefined : (asked - kexDone) / 3;
      const wanted = handshakeRttMs === undefined ? 1 : Math.max(1, Math.floor(sessions?.(handshakeRttMs) ?? 1));
      // The first is asked first: the server starts sessions in order, so the others do not keep it waiting.
      const first = openSftp(ssh);
      // Waited for only by whoever takes them.
      const spare = Promise.allSettled(Array.from({ length: wanted - 1 }, () => openSftp(ssh))).then((settled) => ({
        sftps: settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
        refused: settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown,
      }));
      first.then((sftp) => {
        ssh.off('error', fail);
        ssh.off('close', closedEarly);
        const rttMs = (performance.now() - asked) / 3;
        resolve({ sftp, rttMs, handshakeRttMs: handshakeRttMs ?? rttMs, spare });
      }, fail);
    });
    ssh.connect(config);
    // Requests are sent in batches (one session's requests are applied in order): with Nagle's algorithm the kernel
    // would hold each batch's later packets until the first is acknowledged, a round trip more on a long link.
    ssh.setNoDelay(true);
  });
}

function openSftp(ssh: SshClient): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => ssh.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

async function connectOnce(target: SftpTarget, opts: ConnectOptions): Promise<SftpConnection> {
  const readyTimeout = opts.readyTimeoutMs ?? 20_000;
  // Through `sftp-proxy`, the tunnel is opened first and ssh2 speaks SSH over it.
  const sock = target.proxy ? await openTunnel(target.proxy, target.host, target.port, readyTimeout, opts.signal) : undefined;
  const noop = () => undefined;
  const ssh = new SshClient();
  // Every SFTP channel of the upload (up to MAX_CHANNELS) listens for the connection's close, beside our own listeners.
  ssh.setMaxListeners(40);
  // Errors after the session opened show as 'close' (and fail pending calls); an 'error' without a listener would throw.
  ssh.on('error', noop);
  let verdict: HostKeyVerdict | undefined;
  let open = false;
  let markClosed: () => void = noop;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  let sshClosed = false;
  ssh.on('close', () => {
    open = false;
    sshClosed = true;
    markClosed();
  });
  const onAbort = () => ssh.end();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  return openSession(ssh, {
    ...(sock ? { sock } : { host: target.host, port: target.port }),
    username: target.username,
    privateKey: target.privateKey,
    passphrase: target.passphrase,
    readyTimeout,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 10_000,
    keepaliveCountMax: 3,
    // Only public-key auth: never fall back to an agent or a password prompt. Named alone, so ssh2 does not first
    // try `none` (a round trip that only lists the methods).
    agent: undefined,
    tryKeyboard: false,
    authHandler: ['publickey'],
    hostVerifier: (key: Buffer) => {
      verdict = verifyHostKey({ host: target.host, port: target.port, keyBlob: key, knownHosts: target.knownHosts, fingerprint: target.fingerprint });
      return verdict.ok;
    },
  }, opts.sessions)
    .then(({ sftp: raw, rttMs: sessionRttMs, handshakeRttMs, spare }) => {
      open = true;
      const sftp = trackPending(raw, () => open, ssh);
      raw.on('close', () => {
        open = false;
        markClosed();
      });
      const hostKey = verdict as Extract<HostKeyVerdict, { ok: true }>;
      let side: Promise<SftpConnection> | undefined;
      let spareLeft: Promise<{ sftps: SFTPWrapper[]; refused?: unknown }> | undefined = spare.then(({ sftps, refused }) => ({ sftps: sftps.map((more) => trackPending(more, () => open, ssh)), refused }));
      const connection: SftpConnection = {
        sftp,
        ssh,
        hostKey,
        sessionRttMs,
        handshakeRttMs,
        takeSpare: async (n) => {
          const left = spareLeft;
          spareLeft = undefined;
          if (!left) return { sftps: [] };
          const { sftps, refused } = await left;
          for (const unused of sftps.slice(Math.max(0, n))) unused.end();
          return { sftps: sftps.slice(0, Math.max(0, n)), refused };
        },
        closed,
        isOpen: () => open,
        exec: async (command, timeoutMs) => {
          try {
            return await execCommand(ssh, command, timeoutMs ?? 60_000);
          } catch (error) {
            // A server allowing one session per connection (sshd's MaxSessions 1) refuses the exec channel beside the
            // SFTP session: the command runs over a second connection instead, kept for later commands.
            if (!open || !/Channel open failure/i.test(String((error as Error).message))) throw error;
            // Its SFTP session is closed first, so the one session it may have is free for commands.
            side ??= connectOnce(target, { ...opts, signal: undefined }).then(async (c) => {
              await new Promise((resolve) => {
                c.sftp.once('close', resolve);
                c.sftp.end();
              });
              return c;
            });
            const other = await side;
            return execCommand(other.ssh, command, timeoutMs ?? 60_000);
          }
        },
        openSftp: async () => {
          if (!open) throw new SftpError('the connection closed', 'network');
          return trackPending(await openSftp(ssh), () => open, ssh);
        },
        end: async () => {
          opts.signal?.removeEventListener('abort', onAbort);
          const other = side;
          side = undefined;
          if (other) await other.then((c) => c.end(), () => undefined);
          if (sshClosed) return;
          ssh.end();
          let timer: ReturnType<typeof setTimeout> | undefined;
          const gone = new Promise((r) => ssh.once('close', () => r(null)));
          await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 2000)))]);
          clearTimeout(timer);
        },
      };
      return connection;
    })
    .catch((error: unknown) => {
      opts.signal?.removeEventListener('abort', onAbort);
      ssh.end();
      if (verdict && !verdict.ok) throw new HostKeyError(verdict);
      throw error;
    });
}

/**
 * ssh2 leaves a request pending forever when the channel closes under it (and methods such as readdir make further
 * requests of their own): every call's callback is tracked and failed when the session or the connection closes.
 */
function trackPending(raw: SFTPWrapper, isOpen: () => boolean, ssh: SshClient): SFTPWrapper {
  const noop = () => undefined;
  let sessionOpen = true;
  raw.on('error', noop);
  const pending = new Set<(error: Error) => void>();
  const failPending = () => {
    sessionOpen = false;
    for (const fail of [...pending]) fail(new SftpError('the connection closed', 'network'));
  };
  raw.on('close', () => {
    failPending();
    ssh.off('close', failPending);
  });
  ssh.on('close', failPending);
  return new Proxy(raw, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || EMITTER_METHODS.has(prop)) return value;
      return (...args: unknown[]) => {
        const cb = args[args.length - 1];
        if (typeof cb !== 'function') return (value as (...a: unknown[]) => unknown).apply(target, args);
        let settled = false;
        const once = (...result: unknown[]) => {
          if (settled) return;
          settled = true;
          pending.delete(fail);
          (cb as (...a: unknown[]) => void)(...result);
        };
        const fail = (error: Error) => once(error);
        if (!isOpen() || !sessionOpen) {
          process.nextTick(fail, new SftpError('the connection closed', 'network'));
          return undefined;
        }
        pending.add(fail);
        args[args.length - 1] = once;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function execCommand(ssh: SshClient, command: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    ssh.exec(command, (err, channel) => {
      if (err) return reject(err);
      // No stdin: an account forced to internal-sftp then ends the channel instead of waiting for SFTP packets.
      channel.end();
      const timer = setTimeout(() => {
        channel.close();
        reject(new SftpError(`remote command timed out after ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      channel.on('close', () => clearTimeout(timer));
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

