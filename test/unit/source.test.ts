import { describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatImageRef, parseImageRef, resolveManifestDigest } from '../../src/build/source.js';

describe('image references', () => {
  test.each([
    ['ubuntu', { registry: 'registry-1.docker.io', repository: 'library/ubuntu', tag: 'latest' }],
    ['ubuntu:22.04', { registry: 'registry-1.docker.io', repository: 'library/ubuntu', tag: '22.04' }],
    ['docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime', { registry: 'registry-1.docker.io', repository: 'pytorch/pytorch', tag: '2.5.1-cuda12.4-cudnn9-runtime' }],
    ['nvcr.io/nvidia/pytorch:24.10-py3', { registry: 'nvcr.io', repository: 'nvidia/pytorch', tag: '24.10-py3' }],
    ['127.0.0.1:5000/tiny', { registry: '127.0.0.1:5000', repository: 'tiny', tag: 'latest' }],
    ['localhost/a/b:1', { registry: 'localhost', repository: 'a/b', tag: '1' }],
    [`ghcr.io/o/r@sha256:${'a'.repeat(64)}`, { registry: 'ghcr.io', repository: 'o/r', tag: undefined, digest: `sha256:${'a'.repeat(64)}` }],
  ])('%s', (text, expected) => {
    expect(parseImageRef(text)).toEqual(expected);
  });

  test('a pinned reference keeps the registry as users write it', () => {
    const ref = parseImageRef('ubuntu:22.04');
    expect(formatImageRef({ ...ref, digest: `sha256:${'b'.repeat(64)}` }, { pinned: true })).toBe(`docker.io/library/ubuntu@sha256:${'b'.repeat(64)}`);
  });

  test.each(['', 'Ubuntu', 'a b', `x@sha1:${'a'.repeat(40)}`, 'x:bad/tag!'])('%j is refused', (text) => {
    expect(() => parseImageRef(text)).toThrow();
  });
});

describe('resolving a manifest digest over HTTP', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  async function serve(handler: http.RequestListener): Promise<{ host: string; close: () => Promise<void> }> {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { host: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
  }

  test('follows a bearer-token challenge with basic credentials, as Docker Hub and NGC do', async () => {
    const seen: string[] = [];
    const srv = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
      if (req.url!.startsWith('/token')) {
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ token: 'T0KEN' }));
      }
      if (req.headers.authorization !== 'Bearer T0KEN') {
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="http://${srv.host}/token",service="reg",scope="repository:org/img:pull"`);
        return res.end();
      }
      res.setHeader('docker-content-digest', digest);
      res.end();
    });
    try {
      const got = await resolveManifestDigest(parseImageRef(`${srv.host}/org/img:1`), { insecure: true, auth: { username: 'u', password: 'p' } });
      expect(got).toBe(digest);
      expect(seen[1]).toBe(`GET /token?service=reg&scope=repository%3Aorg%2Fimg%3Apull Basic ${Buffer.from('u:p').toString('base64')}`);
    } finally {
      await srv.close();
    }
  });

  test('a missing image and a refused login are told apart', async () => {
    const srv = await serve((req, res) => {
      res.statusCode = req.url!.includes('secret') ? 403 : 404;
      res.end();
    });
    try {
      await expect(resolveManifestDigest(parseImageRef(`${srv.host}/nope:1`), { insecure: true })).rejects.toThrow(/image not found: 127.0.0.1:\d+\/nope:1/);
      await expect(resolveManifestDigest(parseImageRef(`${srv.host}/secret:1`), { insecure: true })).rejects.toThrow(/refused access.*check registry-username/);
    } finally {
      await srv.close();
    }
  });

  test('an unreachable registry names the registry and suggests plain HTTP when TLS was used', async () => {
    const srv = await serve(() => undefined);
    await srv.close(); // a port nothing listens on
    await expect(resolveManifestDigest(parseImageRef(`${srv.host}/x:1`), {})).rejects.toThrow(
      new RegExp(`cannot reach registry ${srv.host} \\(ECONNREFUSED\\); for a plain-HTTP registry set registry-insecure`),
    );
  });
});
