// A local GitHub Actions cache service, as @actions/cache talks to it on github.com (cache service v2): three
// Twirp RPCs (JSON over POST) on ACTIONS_RESULTS_URL that hand out signed URLs, and the archive bytes in Azure
// Blob storage behind them, here azurite (a real Azure Storage emulator) on a loopback port. Matching follows
// GitHub's rules: the exact key first, then each restore key exactly or as a prefix, newest entry first, always
// with the same version (a hash of the paths and compression the client computes).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { BlobSASPermissions, BlobServiceClient, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { freePort } from './registry.js';
import { tempDir } from './tools.js';

/** Azurite's well-known development account (public, in Microsoft's documentation). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-cache';
const SERVICE = '/twirp/github.actions.results.api.v1.CacheService/';

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  /** Set once the client finalized the upload. */
  sizeBytes?: number;
}

export interface CacheService {
  /** The environment a runner gives a JavaScript action for this service. */
  env: Record<string, string>;
  /** Entries in creation order, finalized or not. */
  readonly entries: CacheEntry[];
  /** RPC calls received, as `Method key`, in order. */
  readonly calls: string[];
  /** Size of an entry's blob in Azure storage, read back through the storage API (undefined when absent). */
  blobSize(entry: CacheEntry): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startCacheService(): Promise<CacheService> {
  const work = tempDir('bi-cache-service-');
  const blobPort = await freePort();
  const azurite = spawn(
    path.resolve('node_modules/.bin/azurite-blob'),
    ['--blobHost', '127.0.0.1', '--blobPort', String(blobPort), '--location', work.dir, '--silent', '--skipApiVersionCheck', '--loose', '--disableTelemetry'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let azuriteLog = '';
  azurite.stdout!.on('data', (d) => (azuriteLog += d));
  azurite.stderr!.on('data', (d) => (azuriteLog += d));

  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${ACCOUNT}`;
  const storage = new BlobServiceClient(blobEndpoint, credential);
  await untilListening(azurite, () => storage.getContainerClient(CONTAINER).createIfNotExists(), () => azuriteLog);

  const sign = (blob: string, permissions: string) => {
    const sas = generateBlobSASQueryParameters(
      { containerName: CONTAINER, blobName: blob, permissions: BlobSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3600_000), protocol: SASProtocol.HttpsAndHttp },
      credential,
    );
    return `${blobEndpoint}/${CONTAINER}/${blob}?${sas.toString()}`;
  };

  const token = `runtime-token-${process.pid}`;
  const entries: CacheEntry[] = [];
  const calls: string[] = [];
  const rpc: Record<string, (req: Record<string, unknown>) => Record<string, unknown>> = {
    CreateCacheEntry(req) {
      const key = String(req.key ?? '');
      const version = String(req.version ?? '');
      if (entries.some((e) => e.key === key && e.version === version)) {
        return { ok: false, message: `cache entry ${key} already exists` };
      }
      const entry = { id: entries.length + 1, key, version };
      entries.push(entry);
      return { ok: true, signed_upload_url: sign(blobName(entry), 'cw') };
    },
    FinalizeCacheEntryUpload(req) {
      const entry = entries.find((e) => e.key === req.key && e.version === req.version && e.sizeBytes === undefined);
      if (!entry) return { ok: false, message: `no upload in progress for ${String(req.key)}` };
      entry.sizeBytes = Number(req.size_bytes ?? 0);
      return { ok: true, entry_id: String(entry.id) };
    },
    GetCacheEntryDownloadURL(req) {
      const version = String(req.version ?? '');
      const ready = entries.filter((e) => e.version === version && e.sizeBytes !== undefined).reverse();
      const restoreKeys = Array.isArray(req.restore_keys) ? req.restore_keys.map(String) : [];
      let match = ready.find((e) => e.key === req.key);
      for (const prefix of restoreKeys) {
        match ??= ready.find((e) => e.key === prefix) ?? ready.find((e) => e.key.startsWith(prefix));
      }
      if (!match) return { ok: false };
      return { ok: true, signed_download_url: sign(blobName(match), 'r'), matched_key: match.key };
    },
  };

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const reply = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { code: 'unauthenticated', msg: 'bad runtime token' });
      const method = req.method === 'POST' && req.url?.startsWith(SERVICE) ? rpc[req.url.slice(SERVICE.length)] : undefined;
      if (!method) return reply(404, { code: 'bad_route', msg: `no handler for ${req.method} ${req.url}` });
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return reply(400, { code: 'malformed', msg: 'request body is not JSON' });
      }
      calls.push(`${req.url!.slice(SERVICE.length)} ${String(parsed.key)}`);
      reply(200, method(parsed));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    env: { ACTIONS_RESULTS_URL: url, ACTIONS_RUNTIME_TOKEN: token, ACTIONS_CACHE_SERVICE_V2: 'true' },
    entries,
    calls,
    async blobSize(entry) {
      const props = await storage.getContainerClient(CONTAINER).getBlobClient(blobName(entry)).getProperties().catch(() => undefined);
      return props?.contentLength;
    },
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      azurite.kill('SIGTERM');
      await new Promise((resolve) => (azurite.exitCode !== null ? resolve(null) : azurite.once('exit', resolve)));
      work.cleanup();
    },
  };
}

function blobName(entry: CacheEntry): string {
  return `entry-${entry.id}.tzst`;
}

/** Retries `probe` until azurite answers it; fails with azurite's output if it exits or never answers. */
async function untilListening(child: ChildProcess, probe: () => Promise<unknown>, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`azurite exited: ${log()}`);
    try {
      await probe();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`azurite did not answer: ${(error as Error).message}\n${log()}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
