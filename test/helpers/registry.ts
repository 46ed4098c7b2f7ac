// A real OCI registry (Debian's docker-registry, distribution 2.8) on a loopback port, with a tiny busybox image
// pushed to it by umoci and skopeo: a real pull, no Docker and no network.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { requireTools, tempDir } from './tools.js';
import type { TokenServer } from './token-server.js';

export interface Registry {
  /** `127.0.0.1:PORT` */
  host: string;
  stop(): Promise<void>;
  /** Requests served so far, from the registry's access log, oldest first. */
  requests(): RegistryRequest[];
  /** Pushes a busybox image with `env` and `labels` set in its config; returns its manifest digest. */
  pushBusybox(repository: string, tag: string, env?: Record<string, string>, labels?: Record<string, string>): string;
  /** Tags an image already pushed with another tag (a manifest PUT: no layer moves); on a registry without auth. */
  tag(repository: string, from: string, to: string): Promise<void>;
  /** Where the registry keeps its data, for another registry to serve (`storage`). */
  dataDir: string;
  /** What the registry printed: its access log (one line a request) and errors. */
  log(): string;
}

export interface RegistryOptions {
  /** Serve this storage (another registry's `dataDir`): images pushed there without auth are served here with auth. */
  storage?: string;
  /** Basic auth from an htpasswd file (bcrypt, as distribution requires) with this one account. */
  htpasswd?: { username: string; password: string };
  /** Bearer tokens from this token service (distribution's `auth: token:`). */
  token?: TokenServer;
}

/** One line of the registry's access log (Apache combined format, written to its stdout). */
export interface RegistryRequest {
  method: string;
  path: string;
  status: number;
  /** Response bytes the registry wrote. */
  bytes: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`registry exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`registry did not listen on ${port}: ${log()}`);
}

export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  requireTools('docker-registry', 'umoci', 'skopeo');
  const { dir, cleanup } = tempDir('bi-registry-');
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  const dataDir = options.storage ?? `${dir}/data`;
  const auth: string[] = [];
  if (options.htpasswd) {
    requireTools('htpasswd');
    const file = path.join(dir, 'htpasswd');
    execFileSync('htpasswd', ['-Bbc', file, options.htpasswd.username, options.htpasswd.password], { stdio: 'pipe' });
    auth.push('auth:', '  htpasswd:', '    realm: build-image-test', `    path: ${file}`);
  } else if (options.token) {
    const t = options.token;
    auth.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.certFile}`);
  }
  writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${dataDir}`, 'http:', `  addr: 127.0.0.1:${port}`, ...auth, ''].join('\n'),
  );
  let output = '';
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await waitForPort(port, child, () => output);
  const host = `127.0.0.1:${port}`;
  return {
    host,
    dataDir,
    log: () => output,
    async tag(repository, from, to) {
      const url = (tag: string) => `http://${host}/v2/${repository}/manifests/${tag}`;
      const manifest = await fetch(url(from), { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
      if (!manifest.ok) throw new Error(`GET ${url(from)}: HTTP ${manifest.status}`);
      const put = await fetch(url(to), { method: 'PUT', headers: { 'Content-Type': manifest.headers.get('content-type')! }, body: Buffer.from(await manifest.arrayBuffer()) });
      if (!put.ok) throw new Error(`PUT ${url(to)}: HTTP ${put.status} ${await put.text()}`);
    },
    requests() {
      return [...output.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/g)].map((m) => ({
        method: m[1],
        path: m[2],
        status: Number(m[3]),
        bytes: m[4] === '-' ? 0 : Number(m[4]),
      }));
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      cleanup();
    },
    pushBusybox(repository, tag, env = {}, labels = {}) {
      const work = path.join(dir, `image-${repository.replace(/\W/g, '_')}-${tag}`);
      // A second push of the same tag (a new upstream digest) starts from a fresh layout.
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      const layout = path.join(work, 'layout');
      const bundle = path.join(work, 'bundle');
      const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: work, stdio: 'pipe' });
      run('umoci', ['init', '--layout', layout]);
      run('umoci', ['new', '--image', `${layout}:${tag}`]);
      run('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
      const bin = path.join(bundle, 'rootfs', 'bin');
      mkdirSync(bin, { recursive: true });
      copyFileSync('/bin/busybox', path.join(bin, 'busybox'));
      for (const applet of ['sh', 'cat', 'echo', 'env', 'ls', 'true']) symlinkSync('busybox', path.join(bin, applet));
      run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
      const envArgs = Object.entries(env).flatMap(([k, v]) => ['--config.env', `${k}=${v}`]);
      const labelArgs = Object.entries(labels).flatMap(([k, v]) => ['--config.label', `${k}=${v}`]);
      run('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', '/bin/sh', ...envArgs, ...labelArgs]);
      run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${host}/${repository}:${tag}`]);
      const inspect = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${host}/${repository}:${tag}`], { encoding: 'utf8' });
      return inspect.trim();
    },
  };
}
