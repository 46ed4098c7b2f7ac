// source-tag-pattern against real registries on loopback: Debian's registry with htpasswd (Basic) auth and the
// same registry behind a Bearer token service, each reached through a proxy that pages the tag list as Docker
// Hub, GHCR and NGC do (Debian's registry answers every tag in one page). The action runs from the sources and
// builds with the real apptainer; the image built shows which tag it came from.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LABELS } from '../../src/build/provenance.js';
import { readSifFile } from '../../src/image/sif.js';
import { parseImageRef } from '../../src/build/source.js';
import { listTags } from '../../src/build/tags.js';
import { startPagingProxy, type PagingProxy } from '../helpers/paging-proxy.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { runActionFromSources } from '../helpers/run-sources.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { execFlags, requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(180_000);

const REPO = 'ngc/pytorch';
const ACCOUNT = { username: 'ci-bot', password: 'pw-7f3a9c1e5b' };
/** Matching `{yy}.{mm}-py3`: 24.9-py3 and 24.10-py3 (two images), 23.01…23.12, 24.1…24.8 and 9.99-py3 (string order's newest). */
const MATCHING_TAGS = [...Array.from({ length: 12 }, (_, i) => `23.${String(i + 1).padStart(2, '0')}-py3`), ...Array.from({ length: 8 }, (_, i) => `24.${i + 1}-py3`), '9.99-py3'];
/** Newer-looking, but not the pattern. */
const OTHER_TAGS = ['24.11-py3-igpu', '24.12-tf2-py3', '25.01-py2', 'latest', 'nightly'];
const ALL = 2 + MATCHING_TAGS.length + OTHER_TAGS.length;
const MATCHED = 2 + MATCHING_TAGS.length;
const PAGE = 5;

let plain: Registry;
let basic: Registry;
let bearer: Registry;
let tokens: TokenServer;
let basicProxy: PagingProxy;
let bearerProxy: PagingProxy;
let work: { dir: string; cleanup: () => void };
let digest10: string;

beforeAll(async () => {
  requireTools('apptainer', 'openssl');
  work = tempDir('bi-tags-');
  plain = await startRegistry();
  plain.pushBusybox(REPO, '24.9-py3', { FLAVOUR: '24.9-py3' });
  digest10 = plain.pushBusybox(REPO, '24.10-py3', { FLAVOUR: '24.10-py3' });
  for (const tag of [...MATCHING_TAGS, ...OTHER_TAGS]) await plain.tag(REPO, '24.9-py3', tag);
  // The same storage served with auth: htpasswd, and tokens from a token service.
  basic = await startRegistry({ storage: plain.dataDir, htpasswd: ACCOUNT });
  tokens = await startTokenServer(work.dir, ACCOUNT);
  bearer = await startRegistry({ storage: plain.dataDir, token: tokens });
  basicProxy = await startPagingProxy(basic.host, PAGE);
  bearerProxy = await startPagingProxy(bearer.host, PAGE);
});

afterAll(async () => {
  await basicProxy?.stop();
  await bearerProxy?.stop();
  await basic?.stop();
  await bearer?.stop();
  await tokens?.stop();
  await plain?.stop();
  work?.cleanup();
});

function inputs(host: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    name: 'pytorch',
    source: `docker://${host}/${REPO}`,
    'source-tag-pattern': '{yy}.{mm}-py3',
    'registry-username': ACCOUNT.username,
    'registry-password': ACCOUNT.password,
    'registry-insecure': 'true',
    output: path.join(work.dir, `${extra.name ?? 'pytorch'}.sif`),
    ...extra,
  };
}

function flavour(image: string): string {
  return execFileSync('apptainer', ['exec', ...execFlags(), image, '/bin/sh', '-c', 'echo $FLAVOUR'], { encoding: 'utf8' }).trim();
}

describe('behind htpasswd (Basic auth), tags over several pages', () => {
  let run: Awaited<ReturnType<typeof runActionFromSources>>;
  const image = () => path.join(work.dir, 'basic.sif');

  beforeAll(async () => {
    run = await runActionFromSources(inputs(basicProxy.host, { name: 'basic' }));
  });

  test('the newest matching tag is built: 24.10-py3, not 24.9-py3 or 9.99-py3 (string order), nor a newer non-matching tag', () => {
    expect(run.log.match(/::error::.*/g)).toBeNull();
    expect(run.exitCode).toBe(0);
    expect(run.outputs['source-tag']).toBe('24.10-py3');
    expect(run.outputs['source-digest']).toBe(digest10);
    expect(flavour(image())).toBe('24.10-py3');
  });

  test('every page was read: the first with n, the next ones from the Link header (last=)', () => {
    const pages = Math.ceil(ALL / PAGE);
    expect(basicProxy.tagRequests).toHaveLength(pages);
    expect(basicProxy.tagRequests[0]).toBe(`/v2/${REPO}/tags/list?n=100`);
    expect(basicProxy.tagRequests.slice(1).every((r) => /[?&]last=/.test(r))).toBe(true);
  });

  test('the summary and the log say which tag was chosen and why', () => {
    const why = `24.10-py3: the newest of ${MATCHED} tag(s) matching {yy}.{mm}-py3 among ${ALL} tag(s) of ${basicProxy.host}/${REPO} (${Math.ceil(ALL / PAGE)} page(s))`;
    expect(run.summary).toContain(`| Source tag | ${why} |`);
    expect(run.log).toContain(`source tag ${why}`);
  });

  test('the image records the tag it was built from', async () => {
    expect((await readSifFile(image())).labels[LABELS.sourceUri]).toBe(`docker://${basicProxy.host}/${REPO}:24.10-py3`);
  });

  test('the password appears nowhere in the log (but in the mask command) or the summary', () => {
    expect(run.log).toContain(`::add-mask::${ACCOUNT.password}`);
    expect(run.log.replace(/^::add-mask::.*$/gm, '')).not.toContain(ACCOUNT.password);
    expect(run.summary).not.toContain(ACCOUNT.password);
  });
});

describe('behind a Bearer token service', () => {
  test('the newest matching tag is built; the token service was asked with the credentials, for pull on the repository', async () => {
    const run = await runActionFromSources(inputs(bearerProxy.host, { name: 'bearer' }));
    expect(run.log.match(/::error::.*/g)).toBeNull();
    expect(run.exitCode).toBe(0);
    expect(run.outputs['source-tag']).toBe('24.10-py3');
    expect(flavour(path.join(work.dir, 'bearer.sif'))).toBe('24.10-py3');
    expect(bearerProxy.tagRequests).toHaveLength(Math.ceil(ALL / PAGE));
    const ours = tokens.requests.filter((r) => r.scopes.includes(`repository:${REPO}:pull`));
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.every((r) => r.granted && r.authorization === `Basic ${Buffer.from(`${ACCOUNT.username}:${ACCOUNT.password}`).toString('base64')}`)).toBe(true);
  });

  test('the client pages with its own n when it asks for fewer than the registry allows', async () => {
    const ref = parseImageRef(`${bearerProxy.host}/${REPO}`);
    const listed = await listTags(ref, { insecure: true, auth: ACCOUNT, pageSize: 3 });
    expect(listed.pages).toBe(Math.ceil(ALL / 3));
    expect(listed.tags.sort()).toEqual(['24.9-py3', '24.10-py3', ...MATCHING_TAGS, ...OTHER_TAGS].sort());
  });

  test('a registry that ignores n answers every tag in one page', async () => {
    const listed = await listTags(parseImageRef(`${basic.host}/${REPO}`), { insecure: true, auth: ACCOUNT, pageSize: 3 });
    expect(listed).toMatchObject({ pages: 1 });
    expect(listed.tags).toHaveLength(ALL);
  });
});

describe('what goes wrong is said', () => {
  test('no tag matches: one error naming the pattern, the repository and some tags seen; nothing built', async () => {
    const output = path.join(work.dir, 'none.sif');
    const run = await runActionFromSources(inputs(basicProxy.host, { 'source-tag-pattern': '{yy}.{mm}-py4', output }));
    expect(run.exitCode).toBe(1);
    expect(run.log).toMatch(
      new RegExp(`::error::source-tag-pattern \\{yy\\}\\.\\{mm\\}-py4 matches none of the ${ALL} tags of ${basicProxy.host}/${REPO}; tags seen: nightly, latest, 25\\.01-py2, 24\\.12-tf2-py3, 24\\.11-py3-igpu, 24\\.10-py3, 24\\.9-py3, 24\\.8-py3, … \\(${ALL - 8} more\\)`),
    );
    expect(run.log).not.toContain('::group::Build with');
    expect(run.outputs['source-tag']).toBeUndefined();
    expect(existsSync(output)).toBe(false);
  });

  test('a wrong password: the registry refused, said as such', async () => {
    const run = await runActionFromSources(inputs(basicProxy.host, { 'registry-password': 'wrong', output: path.join(work.dir, 'refused.sif') }));
    expect(run.exitCode).toBe(1);
    expect(run.log).toContain(`::error::source: registry ${basicProxy.host} refused access to ${REPO} (HTTP 401); check registry-username and registry-password`);
  });

  test('a tag in source that the pattern does not match is an input error, before any registry is asked', async () => {
    const before = basicProxy.tagRequests.length;
    const run = await runActionFromSources(inputs(basicProxy.host, { source: `docker://${basicProxy.host}/${REPO}:24.10-py3`, 'source-tag-pattern': '{yy}.{mm}-py' }));
    expect(run.exitCode).toBe(1);
    expect(run.log).toContain('::error::input source-tag-pattern: the tag 24.10-py3 in source does not match source-tag-pattern {yy}.{mm}-py');
    expect(basicProxy.tagRequests.length).toBe(before);
  });
});
