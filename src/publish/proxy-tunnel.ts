// The SSH connection through `sftp-proxy`: a tunnel to the cluster host opened first, through an HTTP proxy
// (CONNECT) or a SOCKS5 proxy, and handed to ssh2 as its socket. Credentials never appear in a message.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { UserError } from '../user-error.js';
import { shownSshProxy, type SshProxy } from './proxy-url.js';

/** The tunnel could not be opened; `network` when the proxy could not be reached (worth a retry). */
export class TunnelError extends UserError {
  constructor(
    message: string,
    readonly network: boolean,
  ) {
    super(message);
    this.name = 'TunnelError';
  }
}

/** A socket connected through the proxy to `host:port`, ready for the SSH handshake. */
export async function openTunnel(proxy: SshProxy, host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Duplex> {
  const shown = `the proxy ${shownSshProxy(proxy)} (sftp-proxy)`;
  try {
    return proxy.protocol === 'socks5' ? await socksTunnel(proxy, host, port, timeoutMs) : await connectTunnel(proxy, host, port, timeoutMs, signal);
  } catch (error) {
    if (error instanceof TunnelError) throw error;
    const e = error as { code?: string; message?: string };
    // The socks package reports a socket error by its message alone (`connect ECONNREFUSED ...`).
    const code = e.code ?? /\b(E[A-Z_]{3,})\b/.exec(e.message ?? '')?.[1];
    const why = code ?? (e.message ?? String(error)).replace(/^Socks5 proxy rejected connection - /, 'refused: ');
    // A proxy that cannot be reached is a network failure (retried); one that answers and refuses is not.
    const network = code !== undefined || /timed out|closed/i.test(why);
    throw new TunnelError(`cannot open a tunnel to ${host}:${port} through ${shown}: ${why}`, network);
  }
}

async function socksTunnel(proxy: SshProxy, host: string, port: number, timeoutMs: number): Promise<Duplex> {
  const { SocksClient } = await import('socks');
  const { socket } = await SocksClient.createConnection({
    proxy: { host: proxy.host, port: proxy.port, type: 5, userId: proxy.username, password: proxy.password },
    command: 'connect',
    destination: { host, port },
    timeout: timeoutMs,
  });
  return socket;
}

/**
 * HTTP CONNECT, written out: a request line and a status line. undici does CONNECT only inside its HTTP client,
 * which keeps the socket as part of its pool; ssh2 needs a plain socket that it owns from the first byte.
 */
function connectTunnel(proxy: SshProxy, host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxy.port, proxy.host);
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const auth = proxy.username !== undefined ? `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}\r\n` : '';
    let head = Buffer.alloc(0);
    const fail = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(new TunnelError('cancelled', false));
    const onClose = () => fail(new Error('the proxy closed the connection before answering CONNECT'));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16_384) fail(new Error('the proxy answered CONNECT with an overlong header'));
        return;
      }
      cleanup();
      const status = /^HTTP\/1\.[01] (\d{3})([^\r\n]*)/.exec(head.subarray(0, end).toString('latin1'));
      if (!status) return fail(new Error('the proxy did not answer CONNECT with HTTP'));
      if (status[1] !== '200') {
        const hint = status[1] === '407' ? ' (check the user and password in its URL, http://USER:PASSWORD@HOST:PORT)' : '';
        return fail(new TunnelError(`the proxy ${shownSshProxy(proxy)} (sftp-proxy) refused the tunnel to ${host}:${port}: HTTP ${status[1]}${status[2].trimEnd()}${hint}`, false));
      }
      // ssh2 resumes the socket once it listens; bytes after the header already belong to the SSH server.
      socket.pause();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      socket.off('connect', send);
    };
    const send = () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    const timer = setTimeout(() => fail(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', send);
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
  });
}
