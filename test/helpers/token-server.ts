// A registry token service as Docker Hub, NGC and GHCR run one: `GET /token?service=S&scope=repository:NAME:pull`
// with Basic credentials answers a JWT that the registry (distribution's `auth: token:` config) verifies against a
// self-signed certificate made here with openssl. It grants what is asked to the one account it knows.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** The certificate bundle the registry trusts (`rootcertbundle`). */
  certFile: string;
  /** Each token request: its Authorization header and the scopes asked for. */
  requests: { authorization?: string; scopes: string[]; granted: boolean }[];
  stop(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(dir: string, account: { username: string; password: string }): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', '/CN=build-image test token issuer', '-days', '2'], { stdio: 'pipe' });
  const key = createPrivateKey(readFileSync(keyFile));
  const der = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(readFileSync(certFile, 'utf8'))![1].replace(/\s+/g, '');
  const service = 'build-image-test-registry';
  const issuer = 'build-image-test-issuer';
  const expected = `Basic ${Buffer.from(`${account.username}:${account.password}`).toString('base64')}`;
  const requests: TokenServer['requests'] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const granted = req.headers.authorization === expected && url.searchParams.get('service') === service;
    requests.push({ authorization: req.headers.authorization, scopes, granted });
    if (!granted) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic realm="token"');
      return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(':');
      return { type, name, actions: actions.split(',') };
    });
    const header = base64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', x5c: [der] }));
    const claims = base64url(JSON.stringify({ iss: issuer, sub: account.username, aud: service, exp: now + 600, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const signature = base64url(sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 600 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
