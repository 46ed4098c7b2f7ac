// The fake GitHub the docs pull request is tested against: it must behave like GitHub where the client could
// notice, and its OpenAPI check must catch traffic GitHub's description does not allow.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { createGitHubClient, type GitHubClient } from '../../src/docs/github-client.js';
import { blobSha, startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { tempDir } from '../helpers/tools.js';

const REPO = 'hpc/docs';
const WRITE = 'ghp_fakeServerWRITE0123456789abcdefABCD';
const READ = 'ghp_fakeServerREAD0123456789abcdefABCDE';
const FILES = { 'docs/images.md': '| 软件 | 位置 |\n|---|---|\n| cuda | /images/cuda.sif |\n', 'README.md': '# docs\n', 'docs/a/b.txt': 'deep\n' };

let server: GitHubServer;
let github: GitHubClient;

beforeEach(async () => {
  server = await startGitHubServer();
  server.createRepo(REPO, { files: FILES });
  server.createRepo('hpc/secret', { private: true });
  server.addToken(WRITE, { login: 'image-bot', repos: { [REPO]: 'write' } });
  server.addToken(READ, { login: 'reader', repos: { [REPO]: 'read' } });
  github = createGitHubClient({ token: WRITE, apiUrl: server.apiUrl, log: () => {}, writeIntervalMs: 0 });
});

afterEach(async () => {
  await server.stop();
  server.assertNoViolations();
});

async function raw(method: string, route: string, body?: unknown, token = WRITE): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.apiUrl}${route}`, {
    method,
    headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe('the fake GitHub server', () => {
  test('object ids are git’s own: blobs, trees and the contents API agree with git', () => {
    const { dir, cleanup } = tempDir('bi-fake-github-');
    try {
      for (const [file, content] of Object.entries(FILES)) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), content);
      }
      const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
      git('init', '-q');
      git('add', '.');
      const tree = git('write-tree');
      expect(blobSha(FILES['docs/images.md'])).toBe(git('hash-object', 'docs/images.md'));
      return github.rest.git.getCommit({ owner: 'hpc', repo: 'docs', commit_sha: server.branchSha(REPO, 'main')! }).then(({ data }) => {
        expect(data.tree.sha).toBe(tree);
        expect(data.parents).toEqual([]);
      });
    } finally {
      cleanup();
    }
  });

  test('the contents API: base64 wrapped at 60 columns, the blob sha, and a directory listing', async () => {
    const { data } = await github.rest.repos.getContent({ owner: 'hpc', repo: 'docs', path: 'docs/images.md', ref: 'main' });
    if (Array.isArray(data) || data.type !== 'file') throw new Error('expected a file');
    expect(data.sha).toBe(blobSha(FILES['docs/images.md']));
    expect(data.content.split('\n').slice(0, -2).every((line) => line.length === 60)).toBe(true);
    expect(Buffer.from(data.content, 'base64').toString('utf8')).toBe(FILES['docs/images.md']);

    const listing = await github.rest.repos.getContent({ owner: 'hpc', repo: 'docs', path: 'docs' });
    expect((listing.data as { name: string; type: string }[]).map((e) => [e.name, e.type])).toEqual([
      ['images.md', 'file'],
      ['a', 'dir'],
    ]);
  });

  test('updating a file needs its current sha: 422 without, 409 when stale, 200 when right, 201 for a new file', async () => {
    const put = (file: string, sha?: string) =>
      github.rest.repos
        .createOrUpdateFileContents({ owner: 'hpc', repo: 'docs', path: file, message: 'edit', content: Buffer.from('new\n').toString('base64'), ...(sha ? { sha } : {}) })
        .then(
          (r) => ({ status: r.status as number, message: '' }),
          (e: { status: number; response: { data: { message: string } } }) => ({ status: e.status, message: e.response.data.message }),
        );
    expect(await put('README.md')).toEqual({ status: 422, message: 'Invalid request.\n\n"sha" wasn\'t supplied.' });
    expect(await put('README.md', blobSha('stale\n'))).toEqual({ status: 409, message: `README.md does not match ${blobSha('stale\n')}` });
    expect((await put('README.md', blobSha(FILES['README.md']))).status).toBe(200);
    expect((await put('NEW.md')).status).toBe(201);
    expect(server.file(REPO, 'main', 'README.md')).toBe('new\n');
    expect(server.getCommit(REPO, server.branchSha(REPO, 'main')!).message).toBe('edit');
  });

  test('refs behave as on GitHub: 422 for an existing ref, a non-fast-forward without force, or a missing ref', async () => {
    const main = server.branchSha(REPO, 'main')!;
    const tip = server.commit(REPO, 'main', { 'x.txt': 'x\n' });
    expect((await raw('POST', '/repos/hpc/docs/git/refs', { ref: 'refs/heads/main', sha: main })).body).toMatchObject({ message: 'Reference already exists' });
    expect((await raw('PATCH', '/repos/hpc/docs/git/refs/heads/main', { sha: main })).body).toMatchObject({ message: 'Update is not a fast forward' });
    expect((await raw('PATCH', '/repos/hpc/docs/git/refs/heads/main', { sha: main, force: true })).status).toBe(200);
    expect((await raw('DELETE', '/repos/hpc/docs/git/refs/heads/nope')).status).toBe(422);
    expect((await raw('GET', '/repos/hpc/docs/git/ref/heads/nope')).status).toBe(404);
    expect(tip).not.toBe(main);
  });

  test('access: 403 with GitHub’s error body for a read-only token, 404 for a private repository it cannot see, 401 for a bad token', async () => {
    const denied = await raw('POST', '/repos/hpc/docs/git/refs', { ref: 'refs/heads/x', sha: server.branchSha(REPO, 'main') }, READ);
    expect(denied).toEqual({
      status: 403,
      body: { message: 'Resource not accessible by personal access token', documentation_url: 'https://docs.github.com/rest/git/refs#create-a-reference', status: '403' },
    });
    expect((await raw('GET', '/repos/hpc/secret', undefined, READ)).status).toBe(404);
    expect((await raw('GET', '/repos/hpc/docs', undefined, 'ghp_nobody')).body).toMatchObject({ message: 'Bad credentials' });
    expect(server.branches(REPO)).toEqual(['main']);
  });

  test('traffic GitHub’s description does not allow is recorded as a violation', async () => {
    await raw('POST', '/repos/hpc/docs/git/refs', { ref: 'refs/heads/x' });
    await raw('GET', '/repos/hpc/docs/pulls?state=opened');
    await raw('GET', '/repos/hpc/docs/pulls?colour=blue');
    await raw('POST', '/repos/hpc/docs/pulls/1/merge-please');
    await raw('GET', '/repos/hpc/docs/branches');

    expect(server.violations).toEqual([
      expect.stringMatching(/POST \/api\/v3\/repos\/hpc\/docs\/git\/refs \(git\/create-ref\) request: request body must have required property 'sha'/),
      expect.stringMatching(/\(pulls\/list\) request: query parameter "state" must be equal to one of the allowed values/),
      expect.stringMatching(/\(pulls\/list\) request: query parameter "colour" is not defined for pulls\/list/),
      expect.stringMatching(/POST \/api\/v3\/repos\/hpc\/docs\/pulls\/1\/merge-please: no such endpoint in GitHub's REST API/),
      expect.stringMatching(/GET \/api\/v3\/repos\/hpc\/docs\/branches: repos\/list-branches is not implemented by the fake GitHub server/),
    ]);
    expect(() => server.assertNoViolations()).toThrow(/does not match GitHub's OpenAPI description/);
    server.violations.length = 0;
  });
});
