// `sftp-proxy`: the URL of the proxy the SSH connection goes through, parsed and shown without its credentials.
// Apart from the tunnel itself (proxy-tunnel.ts), so that reading the configuration loads no socket code.

export interface SshProxy {
  protocol: 'http' | 'socks5';
  host: string;
  port: number;
  username?: string;
  password?: string;
}

/** `http://[user:pass@]host:port` or `socks5://[user:pass@]host:port`; a message naming the problem otherwise. */
export function parseSshProxy(text: string): SshProxy | { problem: string } {
  let url: URL;
  try {
    // Without `scheme://`, `proxy:3128` would parse as a URL of scheme `proxy:`.
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new Error('no scheme');
    url = new URL(text);
  } catch {
    return { problem: 'must be a URL such as http://proxy.example.com:3128 or socks5://proxy.example.com:1080' };
  }
  const protocol = url.protocol === 'http:' ? 'http' : url.protocol === 'socks5:' || url.protocol === 'socks5h:' ? 'socks5' : undefined;
  if (!protocol) return { problem: `must be an http:// (HTTP CONNECT) or socks5:// URL; got ${url.protocol}//${url.host}` };
  if (!url.hostname) return { problem: 'names no proxy host' };
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
    return { problem: `must be only scheme, host and port (with user and password if needed); got a path or query after ${url.protocol}//${url.host}` };
  }
  return {
    protocol,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || (protocol === 'http' ? 80 : 1080)),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
}

/** How a message names the proxy: scheme, host and port only. */
export function shownSshProxy(proxy: SshProxy): string {
  return `${proxy.protocol}://${proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host}:${proxy.port}`;
}
