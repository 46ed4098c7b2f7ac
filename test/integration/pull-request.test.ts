// The docs pull request against a fake GitHub whose traffic is checked against GitHub's OpenAPI description.
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { createGitHubClient } from '../../src/docs/github-client.js';
import { openOrUpdatePullRequest, PullRequestError, type PullRequestSpec } from '../../src/docs/pull-request.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';

jest.setTimeout(30_000);

const REPO = 'hpc/docs';
const FILE = 'docs/images.md';
const WRITE_TOKEN = 'ghp_writeWRITEwrite0123456789abcdefABCDEF';
const READ_TOKEN = 'ghp_readREADread0123456789abcdefABCDEFGH';
const ACTIONS_TOKEN = 'ghs_actionsACTIONS0123456789abcdefABCDEF';
const PUSH_ONLY_TOKEN = 'github_pat_pushONLY0123456789abcdefABCDEF';
const TABLE = ['# Preset images', '', '| 软件 | 位置 |', '|---|---|', '| cuda | /images/cuda-12.4.sif |', '| gromacs | /images/gromacs-2024.1.sif |', ''].join('\n');

let server: GitHubServer;
let logs: string[];

beforeEach(async () => {
  server = await startGitHubServer();
  server.createRepo(REPO, { files: { [FILE]: TABLE, 'README.md': '# docs\n' }, collaborators: ['alice'] });
  server.addToken(WRITE_TOKEN, { login: 'image-bot', repos: { [REPO]: 'write' } });
  server.addToken(READ_TOKEN, { login: 'reader', repos: { [REPO]: 'read' } });
  server.addToken(ACTIONS_TOKEN, { login: 'github-actions[bot]', kind: 'integration' });
  logs = [];
});

afterEach(async () => {
  await server.stop();
  server.assertNoViolations();
});

/** Replaces the software's row, as the table editor would (a stand-in: the real one is tested on its own). */
function setRow(software: string, location: string) {
  return (content: string) => content.replace(new RegExp(`^\\| ${software} \\|.*$`, 'm'), `| ${software} | ${location} |`);
}

function spec(overrides: Partial<PullRequestSpec> = {}): PullRequestSpec {
  return {
    token: WRITE_TOKEN,
    apiUrl: server.apiUrl,
    repo: REPO,
    path: FILE,
    branch: 'build-image/cuda',
    title: 'cuda: /images/cuda-12.6.sif',
    body: 'Image cuda-12.6.sif, sha256 aaaa',
    labels: ['images'],
    reviewers: ['alice'],
    commitMessage: 'docs: cuda → /images/cuda-12.6.sif',
    edit: setRow('cuda', '/images/cuda-12.6.sif'),
    log: (line) => logs.push(line),
    // The one-second spacing GitHub asks for between writes is for GitHub, not for a local server.
    writeIntervalMs: 0,
    ...overrides,
  };
}

function expectNoTrace(): void {
  expect(server.branches(REPO)).toEqual(['main']);
  expect(server.pulls(REPO)).toEqual([]);
}

function expectTokenNeverShown(...texts: string[]): void {
  for (const text of [...logs, ...texts]) {
    for (const token of [WRITE_TOKEN, READ_TOKEN, ACTIONS_TOKEN, PUSH_ONLY_TOKEN]) expect(text).not.toContain(token);
  }
}

async function failure(promise: Promise<unknown>): Promise<PullRequestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PullRequestError);
  return error as PullRequestError;
}

describe('openOrUpdatePullRequest', () => {
  test('publishing the same change three times opens one pull request with one commit; reruns are unchanged', async () => {
    const first = await openOrUpdatePullRequest(spec());
    const second = await openOrUpdatePullRequest(spec());
    const third = await openOrUpdatePullRequest(spec());

    expect(first).toMatchObject({ operation: 'created', number: 1, branch: 'build-image/cuda', url: `${server.webUrl}/hpc/docs/pull/1` });
    expect(second).toMatchObject({ operation: 'unchanged', number: 1, url: first.url, commitSha: first.commitSha });
    expect(third).toMatchObject({ operation: 'unchanged', number: 1, commitSha: first.commitSha });

    const [pull, ...others] = server.pulls(REPO);
    expect(others).toEqual([]);
    expect(pull).toMatchObject({ state: 'open', head: 'build-image/cuda', base: 'main', title: spec().title, body: spec().body, labels: ['images'], reviewers: ['alice'], draft: false });
    const head = server.getCommit(REPO, server.branchSha(REPO, 'build-image/cuda')!);
    expect(head.parents).toEqual([server.branchSha(REPO, 'main')]);
    expect(head.message).toBe(spec().commitMessage);
    expect(head.files[FILE]).toBe(TABLE.replace('cuda-12.4', 'cuda-12.6'));
    expect(server.file(REPO, 'main', FILE)).toBe(TABLE);
    // The reruns only read.
    const writes = server.exchanges.filter((e) => e.method !== 'GET');
    expect(writes.map((e) => e.operationId)).toEqual(['git/create-tree', 'git/create-commit', 'git/create-ref', 'pulls/create', 'issues/add-labels', 'pulls/request-reviewers']);
    expectTokenNeverShown();
    // The 404 that says the branch does not exist yet is an answer, not an error worth a log line.
    expect(logs.join('\n')).not.toContain('GitHub client error');
  });

  test('a newer value updates the same pull request with a new body and a single commit', async () => {
    const first = await openOrUpdatePullRequest(spec());
    const newer = spec({ title: 'cuda: /images/cuda-12.8.sif', body: 'Image cuda-12.8.sif, sha256 bbbb', edit: setRow('cuda', '/images/cuda-12.8.sif') });
    const second = await openOrUpdatePullRequest(newer);

    expect(second).toMatchObject({ operation: 'updated', number: first.number, url: first.url });
    expect(second.commitSha).not.toBe(first.commitSha);
    expect(server.pulls(REPO)).toHaveLength(1);
    expect(server.pulls(REPO)[0]).toMatchObject({ state: 'open', title: newer.title, body: newer.body, labels: ['images'], reviewers: ['alice'] });
    const head = server.getCommit(REPO, second.commitSha!);
    expect(head.parents).toEqual([server.branchSha(REPO, 'main')]);
    expect(head.files[FILE]).toContain('| cuda | /images/cuda-12.8.sif |');
    expect(head.files[FILE]).not.toContain('cuda-12.6');
  });

  test('a base branch that moved meanwhile: the branch is rebuilt on it and keeps its other changes', async () => {
    const first = await openOrUpdatePullRequest(spec());
    const moved = server.commit(REPO, 'main', { [FILE]: TABLE.replace('gromacs-2024.1', 'gromacs-2025.2'), 'NEWS.md': 'news\n' }, 'gromacs 2025.2');

    const second = await openOrUpdatePullRequest(spec());

    expect(second).toMatchObject({ operation: 'updated', number: first.number });
    const head = server.getCommit(REPO, server.branchSha(REPO, 'build-image/cuda')!);
    expect(head.parents).toEqual([moved]);
    expect(head.files[FILE]).toBe(TABLE.replace('gromacs-2024.1', 'gromacs-2025.2').replace('cuda-12.4', 'cuda-12.6'));
    expect(head.files['NEWS.md']).toBe('news\n');
    // …and once rebuilt, it is stable again.
    expect(await openOrUpdatePullRequest(spec())).toMatchObject({ operation: 'unchanged', number: first.number, commitSha: second.commitSha });
  });

  test('two runs publishing at the same moment end with one pull request and one commit', async () => {
    const [a, b] = await Promise.all([openOrUpdatePullRequest(spec()), openOrUpdatePullRequest(spec())]);

    expect([a.operation, b.operation].sort()).toEqual(['created', 'unchanged']);
    expect(a.number).toBe(1);
    expect(b.number).toBe(1);
    expect(server.pulls(REPO)).toHaveLength(1);
    const head = server.getCommit(REPO, server.branchSha(REPO, 'build-image/cuda')!);
    expect(head.parents).toEqual([server.branchSha(REPO, 'main')]);
    expect(head.files[FILE]).toBe(TABLE.replace('cuda-12.4', 'cuda-12.6'));
    // The loser met the winner's branch or pull request, said so, and read again instead of failing.
    expect(logs.join('\n')).toMatch(/Another run got there first while (creating branch|opening a pull request from) build-image\/cuda \(.*already exists.*\); reading hpc\/docs again/);
  });

  test('two runs with different images at the same moment: one pull request holding one of them', async () => {
    const newer = spec({ title: 'cuda: /images/cuda-12.8.sif', edit: setRow('cuda', '/images/cuda-12.8.sif') });
    const results = await Promise.all([openOrUpdatePullRequest(spec()), openOrUpdatePullRequest(newer)]);

    expect(results.map((r) => r.number)).toEqual([1, 1]);
    expect(server.pulls(REPO)).toHaveLength(1);
    const head = server.getCommit(REPO, server.branchSha(REPO, 'build-image/cuda')!);
    expect(head.parents).toEqual([server.branchSha(REPO, 'main')]);
    const row = /^\| cuda \| (\/images\/cuda-12\.(6|8)\.sif) \|$/m.exec(head.files[FILE]!);
    expect(row).not.toBeNull();
    // The pull request's title describes the image its branch holds.
    expect(server.pulls(REPO)[0]).toMatchObject({ state: 'open', title: `cuda: ${row![1]}` });
  });

  test('a change the base already holds commits nothing and opens nothing', async () => {
    const result = await openOrUpdatePullRequest(spec({ edit: setRow('cuda', '/images/cuda-12.4.sif') }));

    expect(result).toEqual({ operation: 'unchanged', branch: 'build-image/cuda' });
    expectNoTrace();
    expect(server.exchanges.every((e) => e.method === 'GET')).toBe(true);
  });

  test('a pull request made stale by a base that already holds the change is closed', async () => {
    await openOrUpdatePullRequest(spec());
    server.commit(REPO, 'main', { [FILE]: TABLE.replace('cuda-12.4', 'cuda-12.6') }, 'cuda by hand');

    const result = await openOrUpdatePullRequest(spec());

    expect(result).toMatchObject({ operation: 'unchanged', number: 1 });
    expect(server.pulls(REPO)[0]!.state).toBe('closed');
    expect(server.branches(REPO)).toEqual(['main']);
  });

  test('a new title or body alone refreshes the open pull request without a new commit', async () => {
    const first = await openOrUpdatePullRequest(spec());
    const second = await openOrUpdatePullRequest(spec({ body: 'Same image, rebuilt by run 2' }));

    expect(second).toMatchObject({ operation: 'unchanged', number: first.number, commitSha: first.commitSha });
    expect(server.pulls(REPO)[0]!.body).toBe('Same image, rebuilt by run 2');
    expect(logs.join('\n')).toMatch(/title\/body refreshed/);
  });

  test('a closed pull request is replaced by a new one on the same branch', async () => {
    const first = await openOrUpdatePullRequest(spec({ draft: true }));
    expect(server.pulls(REPO)[0]!.draft).toBe(true);
    // Someone closes it without merging; the branch stays.
    const github = createGitHubClient({ token: WRITE_TOKEN, apiUrl: server.apiUrl, log: () => {}, writeIntervalMs: 0 });
    await github.rest.pulls.update({ owner: 'hpc', repo: 'docs', pull_number: first.number!, state: 'closed' });

    const second = await openOrUpdatePullRequest(spec());

    expect(second).toMatchObject({ operation: 'created', number: 2, commitSha: first.commitSha });
    expect(server.pulls(REPO).map((p) => p.state)).toEqual(['closed', 'open']);
  });

  test('a docs file over 1 MB, which the contents API returns without content, is read as a git blob', async () => {
    const big = TABLE + '\n' + 'A paragraph of the image catalogue, repeated to make the page large.\n'.repeat(20_000);
    expect(Buffer.byteLength(big)).toBeGreaterThan(1024 * 1024);
    server.commit(REPO, 'main', { [FILE]: big }, 'a long page');

    const first = await openOrUpdatePullRequest(spec());
    const again = await openOrUpdatePullRequest(spec());

    expect(first.operation).toBe('created');
    expect(again).toMatchObject({ operation: 'unchanged', number: first.number });
    expect(server.file(REPO, 'build-image/cuda', FILE)).toBe(big.replace('cuda-12.4', 'cuda-12.6'));
    expect(server.exchanges.filter((e) => e.operationId === 'git/get-blob').length).toBeGreaterThan(0);
  });

  test('a docs file with a non-ASCII path, on a branch with slashes, against a base that is not the default', async () => {
    const file = 'docs/软件/镜像.md';
    server.commit(REPO, 'main', { [file]: TABLE }, 'Chinese path');
    server.commit(REPO, 'release/2026', { [file]: TABLE }, 'release branch');

    const first = await openOrUpdatePullRequest(spec({ path: file, base: 'release/2026', branch: 'build-image/release/cuda' }));
    const again = await openOrUpdatePullRequest(spec({ path: file, base: 'release/2026', branch: 'build-image/release/cuda' }));

    expect(first.operation).toBe('created');
    expect(again).toMatchObject({ operation: 'unchanged', number: first.number });
    expect(server.pulls(REPO)[0]).toMatchObject({ base: 'release/2026', head: 'build-image/release/cuda' });
    expect(server.file(REPO, 'build-image/release/cuda', file)).toContain('| cuda | /images/cuda-12.6.sif |');
  });

  test('a read-only token: a clear error naming the repository, and nothing created', async () => {
    const error = await failure(openOrUpdatePullRequest(spec({ token: READ_TOKEN })));

    expect(error.message).toMatch(/token lacks write access to hpc\/docs/);
    expect(error.message).toMatch(/GITHUB_TOKEN cannot write to another repository/);
    expectNoTrace();
    expectTokenNeverShown(error.message);
  });

  test('a token GitHub refuses with 403 on the first write: the same clear error, and no branch left behind', async () => {
    const error = await failure(openOrUpdatePullRequest(spec({ token: ACTIONS_TOKEN })));

    expect(error.message).toMatch(/token lacks write access to hpc\/docs \(GitHub answered 403 while writing docs\/images.md: Resource not accessible by integration\)/);
    expect(error.message).toMatch(/GITHUB_TOKEN cannot write to another repository/);
    expect(server.exchanges.some((e) => e.status === 403)).toBe(true);
    expectNoTrace();
    expectTokenNeverShown(error.message);
  });

  test('a missing docs file: the error names the file, the repository and the base branch', async () => {
    const error = await failure(openOrUpdatePullRequest(spec({ path: 'docs/missing.rst' })));

    expect(error.message).toBe('Docs file "docs/missing.rst" not found in hpc/docs on branch "main". Check docs-file and docs-base.');
    expectNoTrace();
  });

  test('a missing repository or base branch: clear errors', async () => {
    const noRepo = await failure(openOrUpdatePullRequest(spec({ repo: 'hpc/nope' })));
    expect(noRepo.message).toMatch(/^Docs repository hpc\/nope not found, or the token cannot see it/);

    const noBase = await failure(openOrUpdatePullRequest(spec({ base: 'release' })));
    expect(noBase.message).toBe('Base branch "release" not found in hpc/docs. Check docs-base.');
    expectNoTrace();
  });

  test('a bad token: a clear 401 error without the token in it', async () => {
    const error = await failure(openOrUpdatePullRequest(spec({ token: 'ghp_unknownUNKNOWN0123456789abcdefABCDEF' })));

    expect(error.message).toMatch(/GitHub rejected the token .* \(401 Bad credentials\)/);
    expect(error.message).not.toContain('ghp_unknown');
  });

  test('an edit that throws: its message, and no branch or pull request left behind', async () => {
    const error = await failure(
      openOrUpdatePullRequest(
        spec({
          edit: () => {
            throw new Error('no table with a 软件 column in docs/images.md');
          },
        }),
      ),
    );

    expect(error.message).toBe('Could not update docs/images.md from hpc/docs (main): no table with a 软件 column in docs/images.md');
    expectNoTrace();
    expect(server.exchanges.every((e) => e.method === 'GET')).toBe(true);
  });

  test('a failure after the branch was created removes the branch again', async () => {
    // A fine-grained token that may push but not open pull requests: the branch goes up, the pull request fails.
    server.addToken(PUSH_ONLY_TOKEN, { login: 'image-bot', repos: { [REPO]: { contents: 'write', pullRequests: 'read' } } });

    const error = await failure(openOrUpdatePullRequest(spec({ token: PUSH_ONLY_TOKEN })));

    expect(error.message).toMatch(/^The token lacks write access to hpc\/docs \(GitHub answered 403 while opening a pull request from build-image\/cuda: Resource not accessible by personal access token\)/);
    expect(server.exchanges.map((e) => e.operationId)).toContain('git/create-ref');
    expect(logs.join('\n')).toMatch(/Deleted branch build-image\/cuda/);
    expectNoTrace();
    expectTokenNeverShown(error.message);
  });

  test('an update never leaves the open pull request without commits, which would make GitHub close it', async () => {
    await openOrUpdatePullRequest(spec());
    server.commit(REPO, 'main', { 'NEWS.md': 'news\n' }, 'unrelated');
    await openOrUpdatePullRequest(spec({ edit: setRow('cuda', '/images/cuda-12.8.sif') }));

    // The fake closes a pull request whose head has nothing beyond its base, as GitHub does; it stayed open.
    expect(server.pulls(REPO).map((p) => p.state)).toEqual(['open']);
    const refMoves = server.exchanges.filter((e) => e.operationId === 'git/update-ref');
    expect(refMoves).toHaveLength(1);
    expect((refMoves[0]!.requestBody as { sha: string }).sha).not.toBe(server.branchSha(REPO, 'main'));
  });

  test('a secondary rate limit is waited out and the request retried', async () => {
    server.beforeNext('pulls/create', () => ({
      status: 403,
      headers: { 'retry-after': '1' },
      body: {
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        documentation_url: 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        status: '403',
      },
    }));

    const result = await openOrUpdatePullRequest(spec());

    expect(result.operation).toBe('created');
    expect(logs.join('\n')).toMatch(/secondary rate limit hit on POST \/repos\/\{owner\}\/\{repo\}\/pulls; retrying in 1s/);
    expect(server.exchanges.filter((e) => e.operationId === 'pulls/create').map((e) => e.status)).toEqual([403, 201]);
  });

  test('a passing server error is retried', async () => {
    server.beforeNext('repos/get-content', () => ({ status: 502, body: { message: 'Server Error' } }));

    const result = await openOrUpdatePullRequest(spec());

    expect(result.operation).toBe('created');
    expect(server.exchanges.filter((e) => e.operationId === 'repos/get-content').map((e) => e.status)).toEqual([502, 200]);
  });

  test('labels or reviewers GitHub refuses come back as warnings; the pull request stands', async () => {
    const result = await openOrUpdatePullRequest(spec({ reviewers: ['mallory'] }));

    expect(result.operation).toBe('created');
    expect(result.warnings).toEqual([expect.stringMatching(/Could not request review from mallory on #1: Reviews may only be requested from collaborators/)]);
    expect(server.pulls(REPO)[0]!.state).toBe('open');
  });

  test('the token never appears in a log line, on success or failure', async () => {
    await openOrUpdatePullRequest(spec());
    await openOrUpdatePullRequest(spec({ edit: setRow('cuda', '/images/cuda-13.0.sif') }));
    await openOrUpdatePullRequest(spec({ token: READ_TOKEN })).catch((e: Error) => logs.push(e.message));

    expect(logs.length).toBeGreaterThan(5);
    expectTokenNeverShown();
    // Every request did carry it, so the check above is not vacuous.
    expect(server.exchanges.every((e) => e.authorization?.includes('ghp_'))).toBe(true);
  });
});
