// Behind a proxy: the GitHub API and registry requests follow HTTPS_PROXY / HTTP_PROXY / NO_PROXY, and the SSH
// connection goes through `sftp-proxy` (HTTP CONNECT or SOCKS5). A logging proxy on loopback shows what went
// through it; the registry, GitHub and sshd are the real test servers.
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseImageRef, resolveManifestDigest } from '../../src/build/source.js';
import { listTags } from '../../src/build/tags.js';
import { readRepositoryFile } from '../../src/docs/docs-file.js';
import { parseSshProxy, type SshProxy } from '../../src/publish/proxy-url.js';
import { stageImage } from '../../src/publish/stage.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { randomFile, sha256File } from '../helpers/files.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { freePort, startRegistry, type Registry } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

jest.setTimeout(60_000);

const TOKEN = 'ghp_proxyTest0123456789abcdefABCDEFGHIJ';
const PROXY_ACCOUNT = { username: 'proxy-user', password: 'pr0xy-s3cret-9f1c' };
const VARIABLES = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];

let proxy: TestProxy;
let authProxy: TestProxy;
let registry: Registry;
let github: GitHubServer;
let sshd: Sshd;
let local: { dir: string; cleanup: () => void };
let saved: Record<string, string | undefined>;

beforeAll(async () => {
  [proxy, authProxy, registry, github, sshd] = await Promise.all([startTestProxy(), startTestProxy({ credentials: PROXY_ACCOUNT }), startRegistry(), startGitHubServer(), startSshd()]);
  registry.pushBusybox('lib/busybox', '1.36');
  github.createRepo('hpc/docs', { files: { 'docs/images.md': '| 软件 | 位置 |\n|---|---|\n' } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { 'hpc/docs': 'write' } });
  local = tempDir('bi-proxy-');
  saved = Object.fromEntries(VARIABLES.map((v) => [v, process.env[v]]));
}, 60_000);

afterAll(async () => {
  await Promise.all([proxy?.stop(), authProxy?.stop(), registry?.stop(), github?.stop(), sshd?.stop()]);
  local?.cleanup();
});

afterEach(() => {
  for (const v of VARIABLES) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
  proxy.log.length = 0;
  authProxy.log.length = 0;
  proxy.refuse.clear();
});

function useProxy(url: string, noProxy?: string): void {
  for (const v of VARIABLES) delete process.env[v];
  process.env.HTTPS_PROXY = url;
  process.env.HTTP_PROXY = url;
  if (noProxy !== undefined) process.env.NO_PROXY = noProxy;
}

const readDocs = (log: (line: string) => void = () => {}) =>
  readRepositoryFile({ token: TOKEN, apiUrl: github.apiUrl, repo: 'hpc/docs', path: 'docs/images.md', log });

const ref = () => parseImageRef(`${registry.host}/lib/busybox:1.36`);

/** The error a promise rejects with (a promise that resolves fails the test). */
const errorOf = (p: Promise<unknown>): Promise<Error> => p.then(() => Promise.reject(new Error('expected a failure')), (error: Error) => error);

describe('HTTP requests follow HTTPS_PROXY / HTTP_PROXY / NO_PROXY', () => {
  test('the registry digest, the tag list and the GitHub API all go through the proxy when it is set', async () => {
    useProxy(proxy.httpUrl);
    const digest = await resolveManifestDigest(ref(), { insecure: true });
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await listTags(ref(), { insecure: true })).tags).toEqual(['1.36']);
    expect(await readDocs()).toContain('软件');

    const githubHost = new URL(github.apiUrl).host;
    const requests = proxy.log.map((e) => `${e.kind} ${e.target} ${e.request}`);
    expect(requests).toContain(`forward ${registry.host} HEAD /v2/lib/busybox/manifests/1.36`);
    expect(requests).toContain(`forward ${registry.host} GET /v2/lib/busybox/tags/list?n=100`);
    expect(requests).toContain(`forward ${githubHost} GET /api/v3/repos/hpc/docs`);
    expect(requests.some((r) => r.startsWith(`forward ${githubHost} GET /api/v3/repos/hpc/docs/contents/docs%2Fimages.md`))).toBe(true);
  });

  test('nothing goes through the proxy for hosts NO_PROXY names (lower-case variables alike)', async () => {
    for (const v of VARIABLES) delete process.env[v];
    process.env.https_proxy = proxy.httpUrl;
    process.env.http_proxy = proxy.httpUrl;
    process.env.no_proxy = `example.org,127.0.0.1`;
    expect(await resolveManifestDigest(ref(), { insecure: true })).toMatch(/^sha256:/);
    expect(await readDocs()).toContain('软件');
    expect(proxy.log).toEqual([]);

    // The same hosts with only the registry's port excluded: GitHub goes through, the registry does not.
    useProxy(proxy.httpUrl, registry.host);
    await resolveManifestDigest(ref(), { insecure: true });
    await readDocs();
    expect(proxy.log.map((e) => e.target)).not.toContain(registry.host);
    expect(proxy.log.map((e) => e.target)).toContain(new URL(github.apiUrl).host);
  });

  test('a proxy variable without a scheme (HOST:PORT) is an http:// proxy, as curl reads it', async () => {
    useProxy(new URL(proxy.httpUrl).host);
    expect(await resolveManifestDigest(ref(), { insecure: true })).toMatch(/^sha256:/);
    expect(proxy.log.map((e) => `${e.kind} ${e.target}`)).toContain(`forward ${registry.host}`);
  });

  test('proxy credentials in the URL are sent to the proxy and appear in no message', async () => {
    const withAuth = new URL(authProxy.httpUrl);
    withAuth.username = PROXY_ACCOUNT.username;
    withAuth.password = PROXY_ACCOUNT.password;
    useProxy(withAuth.href);
    expect(await resolveManifestDigest(ref(), { insecure: true })).toMatch(/^sha256:/);
    expect(authProxy.log.every((e) => e.credentials === `${PROXY_ACCOUNT.username}:${PROXY_ACCOUNT.password}` && e.status === 200)).toBe(true);

    withAuth.password = 'wrong-password-77';
    useProxy(withAuth.href);
    const error = await errorOf(resolveManifestDigest(ref(), { insecure: true }));
    expect(error.message).toBe(`the proxy ${authProxy.httpUrl} (HTTP_PROXY) refused ${registry.host}: HTTP 407, proxy authentication required (check the user and password in its URL, http://USER:PASSWORD@HOST:PORT)`);
    expect(error.message).not.toContain('wrong-password-77');
  });

  test('a proxy that refuses the tunnel or cannot be reached is named in the error, without its credentials', async () => {
    // An https target goes through CONNECT; the proxy, not this machine, resolves the name.
    useProxy(proxy.httpUrl.replace('//', '//someone:hunter2@'));
    proxy.refuse.add('registry.example.invalid:443');
    const refused = await errorOf(resolveManifestDigest(parseImageRef('registry.example.invalid/lib/busybox:1.36')));
    expect(refused.message).toBe(`the proxy ${proxy.httpUrl} (HTTPS_PROXY) refused the tunnel to registry.example.invalid: HTTP 403`);
    expect(proxy.log).toEqual([{ kind: 'connect', target: 'registry.example.invalid:443', credentials: 'someone:hunter2', status: 403 }]);

    const closed = `http://user:hunter2@127.0.0.1:${await freePort()}`;
    useProxy(closed);
    const unreachable = await errorOf(resolveManifestDigest(ref(), { insecure: true }));
    expect(unreachable.message).toBe(`cannot reach the proxy ${closed.replace('user:hunter2@', '')} (HTTP_PROXY) for ${registry.host} (ECONNREFUSED)`);
    const lines: string[] = [];
    const github = await errorOf(readDocs((l) => lines.push(l)));
    expect(github.message).toContain(`cannot reach the proxy ${closed.replace('user:hunter2@', '')} (HTTP_PROXY)`);
    for (const text of [refused.message, unreachable.message, github.message, ...lines]) expect(text).not.toContain('hunter2');
  });
});

describe('the SSH connection goes through sftp-proxy', () => {
  const MiB = 1024 * 1024;
  let image: string;
  let imageSha: string;
  beforeAll(() => {
    image = path.join(local.dir, 'tiny.sif');
    imageSha = randomFile(image, 2 * MiB);
  });

  function stagingDir(name: string): string {
    const dir = path.join(sshd.root, name);
    mkdirSync(dir, { recursive: true });
    chownSync(dir, sshd.uid, sshd.gid);
    return dir;
  }

  async function stageThrough(sshProxy: SshProxy, dir: string, reporter = new CaptureReporter()) {
    const target = { host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.privateKey, knownHosts: sshd.knownHostsLine, proxy: sshProxy };
    return stageImage({ target, image, stagingDir: stagingDir(dir), remoteName: 'tiny.sif', reporter, connect: { retries: 0 } });
  }

  function parsed(url: string): SshProxy {
    const p = parseSshProxy(url);
    if ('problem' in p) throw new Error(p.problem);
    return p;
  }

  test.each([
    ['HTTP CONNECT', 'connect' as const, () => proxy.httpUrl],
    ['SOCKS5', 'socks5' as const, () => proxy.socksUrl],
  ])('an upload through an %s proxy arrives whole, and the proxy logged the tunnel to sshd', async (_name, kind, url) => {
    const staged = await stageThrough(parsed(url()), `via-${kind}`);
    expect(sha256File(staged.stagedPath)).toBe(imageSha);
    expect(proxy.log.length).toBeGreaterThan(0);
    expect(proxy.log.every((e) => e.kind === kind && e.target === `${sshd.host}:${sshd.port}` && e.status === 200)).toBe(true);
  });

  test('SOCKS5 and HTTP CONNECT with credentials: sent to the proxy, never logged', async () => {
    for (const url of [authProxy.socksUrl, authProxy.httpUrl]) {
      const reporter = new CaptureReporter();
      const withAuth = url.replace('//', `//${PROXY_ACCOUNT.username}:${PROXY_ACCOUNT.password}@`);
      const staged = await stageThrough(parsed(withAuth), 'via-auth', reporter);
      expect(sha256File(staged.stagedPath)).toBe(imageSha);
      expect(reporter.text()).not.toContain(PROXY_ACCOUNT.password);
    }
    expect(authProxy.log.map((e) => [e.kind, e.credentials, e.status])).toEqual(
      expect.arrayContaining([
        ['socks5', `${PROXY_ACCOUNT.username}:${PROXY_ACCOUNT.password}`, 200],
        ['connect', `${PROXY_ACCOUNT.username}:${PROXY_ACCOUNT.password}`, 200],
      ]),
    );
  });

  test('a proxy that refuses the tunnel fails the stage with a message naming the proxy, not its password', async () => {
    proxy.refuse.add(`${sshd.host}:${sshd.port}`);
    const http = await errorOf(stageThrough(parsed(proxy.httpUrl.replace('//', '//u:hunter2@')), 'refused'));
    expect(http.message).toBe(`the proxy ${proxy.httpUrl} (sftp-proxy) refused the tunnel to ${sshd.host}:${sshd.port}: HTTP 403 Forbidden`);
    const socks = await errorOf(stageThrough(parsed(proxy.socksUrl), 'refused'));
    expect(socks.message).toMatch(new RegExp(`^cannot open a tunnel to ${sshd.host}:${sshd.port} through the proxy ${proxy.socksUrl} \\(sftp-proxy\\): refused`));
    expect(http.message + socks.message).not.toContain('hunter2');

    // A proxy that cannot be reached: named, and a network failure (retried like any dropped connection).
    const port = await freePort();
    for (const scheme of ['http', 'socks5']) {
      const unreachable = await errorOf(stageThrough(parsed(`${scheme}://u:hunter2@127.0.0.1:${port}`), 'refused'));
      expect(unreachable.message).toBe(`cannot open a tunnel to ${sshd.host}:${sshd.port} through the proxy ${scheme}://127.0.0.1:${port} (sftp-proxy): ECONNREFUSED`);
    }
  });
});
