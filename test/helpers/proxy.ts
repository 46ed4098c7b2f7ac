// A forward proxy on loopback that logs what it handled: HTTP CONNECT tunnels, plain-HTTP forwarding
// (`GET http://host/path`, what a client sends for an http:// target) and, on a second port, SOCKS5 CONNECT
// (RFC 1928, with RFC 1929 user/password when asked). Optional credentials; a list of refused targets.
import http from 'node:http';
import net from 'node:net';

export interface ProxyLogEntry {
  kind: 'connect' | 'forward' | 'socks5';
  /** `host:port` of the target. */
  target: string;
  /** `GET /v2/...` for a forwarded request. */
  request?: string;
  /** The Proxy-Authorization header or SOCKS5 credentials the client sent, as `user:password`. */
  credentials?: string;
  /** What the proxy answered: 200, or the refusal. */
  status: number;
}

export interface TestProxy {
  /** `http://127.0.0.1:PORT` (CONNECT and forwarding). */
  httpUrl: string;
  /** `socks5://127.0.0.1:PORT`. */
  socksUrl: string;
  log: ProxyLogEntry[];
  /** Targets (`host:port`) the proxy refuses: 403 for HTTP, reply 0x02 for SOCKS5. */
  refuse: Set<string>;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  /** Require these credentials (407 / SOCKS5 auth failure otherwise). */
  credentials?: { username: string; password: string };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function splitHostPort(authority: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
  return m ? { host: m[1], port: Number(m[2]) } : { host: authority, port: 80 };
}

function pipeBoth(a: net.Socket, b: net.Socket, sockets: Set<net.Socket>): void {
  for (const s of [a, b]) {
    sockets.add(s);
    s.on('error', () => {
      a.destroy();
      b.destroy();
    });
    s.on('close', () => sockets.delete(s));
  }
  a.pipe(b).pipe(a);
}

export async function startTestProxy(options: ProxyOptions = {}): Promise<TestProxy> {
  const log: ProxyLogEntry[] = [];
  const refuse = new Set<string>();
  const sockets = new Set<net.Socket>();
  const expected = options.credentials ? `${options.credentials.username}:${options.credentials.password}` : undefined;
  const basic = (header: string | undefined) => (header?.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString() : undefined);
  const statusFor = (target: string, credentials: string | undefined) => (expected !== undefined && credentials !== expected ? 407 : refuse.has(target) ? 403 : 200);

  const httpServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/');
    const target = `${url.hostname}:${url.port || 80}`;
    const credentials = basic(req.headers['proxy-authorization']);
    const status = statusFor(target, credentials);
    log.push({ kind: 'forward', target, request: `${req.method} ${url.pathname}${url.search}`, credentials, status });
    if (status !== 200) {
      res.writeHead(status, status === 407 ? { 'Proxy-Authenticate': 'Basic realm="test"' } : {}).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request({ host: url.hostname, port: url.port || 80, method: req.method, path: url.pathname + url.search, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  httpServer.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    const credentials = basic(req.headers['proxy-authorization']);
    const status = statusFor(target, credentials);
    log.push({ kind: 'connect', target, credentials, status });
    if (status !== 200) {
      client.end(`HTTP/1.1 ${status} ${status === 407 ? 'Proxy Authentication Required' : 'Forbidden'}\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const { host, port } = splitHostPort(target);
    const upstream = net.connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      pipeBoth(client, upstream, sockets);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
  });
  httpServer.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const socksServer = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    void socksSession(client, expected, statusFor, log, sockets);
  });

  const httpPort = await listen(httpServer);
  const socksPort = await listen(socksServer);
  return {
    httpUrl: `http://127.0.0.1:${httpPort}`,
    socksUrl: `socks5://127.0.0.1:${socksPort}`,
    log,
    refuse,
    async stop() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => httpServer.close(r)), new Promise((r) => socksServer.close(r))]);
    },
  };
}

/** Reads exactly `n` bytes from a socket that is not yet piped anywhere. */
function reader(socket: net.Socket): (n: number) => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let waiting: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    waiting?.();
  });
  return async (n) => {
    while (buffered.length < n) {
      if (socket.destroyed) throw new Error('closed');
      await new Promise<void>((resolve) => {
        waiting = resolve;
        socket.once('close', resolve);
      });
    }
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
}

async function socksSession(
  client: net.Socket,
  expected: string | undefined,
  statusFor: (target: string, credentials: string | undefined) => number,
  log: ProxyLogEntry[],
  sockets: Set<net.Socket>,
): Promise<void> {
  const read = reader(client);
  try {
    const [version, count] = await read(2);
    const methods = [...(await read(count))];
    if (version !== 5) return void client.destroy();
    let credentials: string | undefined;
    const wantAuth = expected !== undefined;
    if (wantAuth && !methods.includes(2)) return void client.end(Buffer.from([5, 0xff]));
    client.write(Buffer.from([5, wantAuth ? 2 : 0]));
    if (wantAuth) {
      const [, ulen] = await read(2);
      const user = (await read(ulen)).toString();
      const [plen] = await read(1);
      credentials = `${user}:${(await read(plen)).toString()}`;
      client.write(Buffer.from([1, credentials === expected ? 0 : 1]));
    }
    const [, command, , atyp] = await read(4);
    let host: string;
    if (atyp === 1) host = [...(await read(4))].join('.');
    else if (atyp === 3) host = (await read((await read(1))[0])).toString();
    else throw new Error('IPv6 not supported by the test proxy');
    const port = (await read(2)).readUInt16BE(0);
    const target = `${host}:${port}`;
    const status = command !== 1 ? 400 : statusFor(target, credentials);
    log.push({ kind: 'socks5', target, credentials, status });
    const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    if (status !== 200) return void client.end(reply(2));
    const upstream = net.connect(port, host, () => {
      client.removeAllListeners('data');
      client.write(reply(0));
      pipeBoth(client, upstream, sockets);
    });
    upstream.on('error', () => client.end(reply(5)));
  } catch {
    client.destroy();
  }
}
