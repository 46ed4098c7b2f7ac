// What an image is built from: a registry reference, an archive or a local SIF. Parsing is pure; resolving a
// source to a content digest (for provenance and the build key) talks to the registry or reads the file.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { isImageReference } from './image-ref.js';
import { ProxyError, proxyFetch } from '../util/proxy.js';

export type Source =
  | { kind: 'docker'; uri: string; ref: ImageRef }
  | { kind: 'oras'; uri: string; ref: ImageRef }
  | { kind: 'docker-archive'; uri: string; path: string }
  | { kind: 'oci-archive'; uri: string; path: string }
  | { kind: 'sif'; uri: string; path: string };

export interface ImageRef {
  /** Registry host with port, e.g. `registry-1.docker.io`, `nvcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path, e.g. `library/ubuntu`, `nvidia/pytorch`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'registry-1.docker.io';

/** Parses a reference the way docker and apptainer do: a first component with a dot, colon or `localhost` is a registry. */
export function parseImageRef(text: string): ImageRef {
  if (text === '' || /\s/.test(text)) throw new Error(`not an image reference: '${text}'`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`digest must be sha256: and 64 hex digits; got '${digest}'`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new Error(`invalid tag '${tag}'`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === 'localhost')) {
    registry = parts.shift()!;
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') registry = DOCKER_HUB;
  let repository = parts.join('/');
  if (repository === '' || !/^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/.test(repository)) {
    throw new Error(`invalid repository name '${repository}' (lowercase letters, digits, separators . _ - and /)`);
  }
  // The grammar the linter checks `From:` lines with: what passed the specific checks above must also pass it.
  if (!isImageReference(text)) throw new Error(`not a valid image reference: '${text}' (NAME[:TAG][@DIGEST], lowercase repository)`);
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, tag, digest };
}

export function formatImageRef(ref: ImageRef, options: { pinned?: boolean } = {}): string {
  const host = ref.registry === DOCKER_HUB ? 'docker.io' : ref.registry;
  const base = `${host}/${ref.repository}`;
  if (options.pinned && ref.digest) return `${base}@${ref.digest}`;
  return `${base}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

const ACCEPTED = 'docker://REF, oras://REF, docker-archive:PATH, oci-archive:PATH or a path to a .sif file';

export function parseSource(text: string, cwd: string): Source {
  const uri = text.trim();
  const schemeMatch = /^([a-z][a-z0-9+-]*):(\/\/)?/.exec(uri);
  const scheme = schemeMatch?.[1];
  if (scheme === 'docker' || scheme === 'oras') {
    if (!schemeMatch![2]) throw new Error(`${scheme} sources are written ${scheme}://REF; got '${uri}'`);
    const ref = parseImageRef(uri.slice(scheme.length + 3));
    return { kind: scheme, uri, ref };
  }
  if (scheme === 'docker-archive' || scheme === 'oci-archive') {
    const file = uri.slice(scheme.length + 1).replace(/^\/\//, '');
    const abs = path.resolve(cwd, file);
    requireFile(abs, file);
    return { kind: scheme, uri: `${scheme}:${abs}`, path: abs };
  }
  if (scheme && scheme.length > 1) {
    throw new Error(`unsupported source scheme '${scheme}:'; accepted: ${ACCEPTED}`);
  }
  if (!uri.endsWith('.sif')) throw new Error(`'${uri}' is not a source; accepted: ${ACCEPTED}`);
  const abs = path.resolve(cwd, uri);
  requireFile(abs, uri);
  return { kind: 'sif', uri: abs, path: abs };
}

function requireFile(abs: string, shown: string): void {
  if (!existsSync(abs)) throw new Error(`file not found: ${shown}`);
  if (!statSync(abs).isFile()) throw new Error(`not a file: ${shown}`);
}


export interface RegistryAuth {
  username: string;
  password: string;
}

export interface ResolveOptions {
  insecure?: boolean;
  auth?: RegistryAuth;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Cancels the requests (a cancelled run must not wait for a registry that does not answer). */
  signal?: AbortSignal;
}

/** Every manifest kind a registry may answer with: indexes (multi-platform) and single-platform manifests. */
export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The content digest of a source: the registry's manifest digest, or the sha256 of a local file. */
export async function resolveDigest(source: Source, options: ResolveOptions = {}): Promise<string> {
  switch (source.kind) {
    case 'docker':
    case 'oras':
      return source.ref.digest ?? (await resolveManifestDigest(source.ref, options));
    default:
      return `sha256:${await (await import('../util/hash.js')).sha256File(source.path)}`;
  }
}

/** HEAD on the manifest, following the registry's bearer-token challenge (Docker Hub, NGC, GHCR) when there is one. */
export async function resolveManifestDigest(ref: ImageRef, options: ResolveOptions = {}): Promise<string> {
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const where = `${ref.registry}/${ref.repository}:${reference}`;
  const client = registryClient(ref, options);
  const manifestPath = `manifests/${reference}`;
  const response = await client.request(manifestPath, { method: 'HEAD', accept: MANIFEST_TYPES });
  if (response.status === 404) throw new Error(`image not found: ${where}`);
  if (!response.ok) throw new Error(`registry ${ref.registry} answered HTTP ${response.status} for ${where}`);
  const digest = response.headers.get('docker-content-digest');
  if (digest && /^sha256:[0-9a-f]{64}$/.test(digest)) return digest;
  // No digest header (some registries and proxies leave it out): the digest is the sha256 of the manifest's bytes.
  const manifest = await client.request(manifestPath, { accept: MANIFEST_TYPES });
  if (!manifest.ok) throw new Error(`registry ${ref.registry} answered HTTP ${manifest.status} for the manifest of ${where}`);
  const body = Buffer.from(await manifest.arrayBuffer());
  if (body.length === 0) throw new Error(`registry ${ref.registry} gave neither a content digest nor a manifest for ${where}`);
  const { createHash } = await import('node:crypto');
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

export interface RegistryClient {
  /**
   * A request to the repository's API: `resource` is relative to `/v2/REPOSITORY/` (`manifests/TAG`, `tags/list?n=100`),
   * or an absolute URL (a `Link` header's next page). A refused login is thrown; every other status is returned.
   */
  request(resource: string, init?: { method?: 'GET' | 'HEAD'; accept?: string }): Promise<Response>;
  /** The absolute URL of a resource. */
  url(resource: string): string;
}

/**
 * Requests to one repository that answer the registry's authentication challenge the first time: a bearer token
 * from its token service (Docker Hub, NGC, GHCR), with the credentials as Basic auth when given, or Basic auth
 * directly (an htpasswd registry). Later requests reuse what worked.
 */
export function registryClient(ref: ImageRef, options: ResolveOptions = {}): RegistryClient {
  const doFetch = options.fetch ?? proxyFetch;
  const base = `${options.insecure ? 'http' : 'https'}://${ref.registry}/v2/${ref.repository}/`;
  const basic = options.auth
    ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`
    : undefined;
  let auth: Record<string, string> = {};
  const send = async (url: string, method: string, accept: string | undefined): Promise<Response> => {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
    try {
      return await doFetch(url, {
        method,
        headers: { ...(accept ? { Accept: accept } : {}), ...auth },
        signal: options.signal ? AbortSignal.any([timeout, options.signal]) : timeout,
      });
    } catch (error) {
      if (error instanceof ProxyError) throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new Error(`cannot reach registry ${ref.registry} (${why})${options.insecure ? '' : '; for a plain-HTTP registry set registry-insecure'}`, { cause: error });
    }
  };
  const url = (resource: string) => new URL(resource, base).href;
  return {
    url,
    async request(resource, init = {}) {
      const method = init.method ?? 'GET';
      const target = url(resource);
      let response = await send(target, method, init.accept);
      if (response.status === 401) {
        const challenge = response.headers.get('www-authenticate') ?? '';
        const before = auth.Authorization;
        if (/^bearer/i.test(challenge)) {
          auth = { Authorization: `Bearer ${await fetchBearerToken(challenge, basic, doFetch, ref)}` };
        } else if (basic) {
          auth = { Authorization: basic };
        }
        if (auth.Authorization && auth.Authorization !== before) response = await send(target, method, init.accept);
      }
      if (response.status === 401 || response.status === 403) {
        throw new Error(`registry ${ref.registry} refused access to ${ref.repository} (HTTP ${response.status}); check registry-username and registry-password`);
      }
      return response;
    },
  };
}

async function fetchBearerToken(
  challenge: string,
  basic: string | undefined,
  doFetch: typeof fetch,
  ref: ImageRef,
): Promise<string> {
  const params: Record<string, string> = {};
  for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
  if (!params.realm) throw new Error(`registry ${ref.registry} sent an authentication challenge without a realm`);
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  url.searchParams.set('scope', params.scope ?? `repository:${ref.repository}:pull`);
  const response = await doFetch(url, { headers: basic ? { Authorization: basic } : {} });
  if (!response.ok) {
    throw new Error(`registry ${ref.registry} refused a token (HTTP ${response.status}); check registry-username and registry-password`);
  }
  const body = (await response.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error(`registry ${ref.registry} token service returned no token`);
  return token;
}
