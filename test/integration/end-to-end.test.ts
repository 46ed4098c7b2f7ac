// The whole pipeline as one `stage: all` step of a workflow: a real registry, real apptainer, a real OpenSSH
// server as the cluster, the smoke test in the built image, and the docs PR on a local GitHub whose traffic
// is checked against GitHub's OpenAPI description.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runBundledActionAsync, type ActionRun } from '../helpers/action.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

jest.setTimeout(300_000);

const DOCS = 'sjtu-hpc/docs';
const DOCS_FILE = 'docs/container/preset_images.rst';
const TOKEN = 'ghp_e2eTOKENe2e0123456789abcdefABCDEFGHIJ';

let registry: Registry;
let sshd: Sshd;
let github: GitHubServer;
const work = tempDir('bi-e2e-');
let first: ActionRun;
let second: ActionRun;
let remoteDir: string;
/** What the live path and the docs PR held right after the first run. */
let liveAfterFirst: { sha256: string; sameAsLocal: boolean; aliasSame: boolean; prBody: string };

function inputs(): Record<string, string> {
  return {
    stage: 'all',
    name: 'pytorch',
    source: `docker://${registry.host}/tiny:1.0`,
    'registry-insecure': 'true',
    'sftp-host': '127.0.0.1',
    'sftp-port': String(sshd.port),
    'sftp-username': sshd.user,
    'sftp-private-key': sshd.encryptedKey,
    'sftp-passphrase': sshd.passphrase,
    'sftp-known-hosts': sshd.knownHostsLine,
    'remote-dir': remoteDir,
    'remote-name': 'pytorch-24.10.sif',
    alias: 'pytorch-latest.sif',
    preset: 'none',
    'smoke-command': 'echo smoke-ok',
    gpus: '0',
    baseline: 'none',
    'github-token': TOKEN,
    'github-api-url': github.apiUrl,
    'docs-repo': DOCS,
    'docs-file': DOCS_FILE,
    software: 'PyTorch',
  };
}

beforeAll(async () => {
  registry = await startRegistry();
  registry.pushBusybox('tiny', '1.0');
  sshd = await startSshd();
  remoteDir = path.join(sshd.root, 'img');
  github = await startGitHubServer();
  github.createRepo(DOCS, { files: { [DOCS_FILE]: readFileSync('test/fixtures/docs/preset-images.rst', 'utf8') } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS]: 'write' } });
  const env = { GITHUB_REPOSITORY: 'sjtu-hpc/images', GITHUB_RUN_ID: '77', GITHUB_SHA: 'f'.repeat(40) };
  first = await runBundledActionAsync(inputs(), { cwd: work.dir, env });
  const live = path.join(remoteDir, 'pytorch-24.10.sif');
  if (existsSync(live)) {
    liveAfterFirst = {
      sha256: execFileSync('sha256sum', [live], { encoding: 'utf8' }).split(' ')[0],
      sameAsLocal: readFileSync(live).equals(readFileSync(path.join(work.dir, 'pytorch.sif'))),
      aliasSame: readFileSync(path.join(remoteDir, 'pytorch-latest.sif')).equals(readFileSync(live)),
      prBody: github.pulls(DOCS)[0]?.body ?? '',
    };
  }
  // Unchanged inputs would skip the second run (see skip-unchanged.test.ts); force rebuilds and republishes.
  second = await runBundledActionAsync({ ...inputs(), force: 'true' }, { cwd: work.dir, env });
});

afterAll(async () => {
  await registry?.stop();
  await sshd?.stop();
  await github?.stop();
  work.cleanup();
});

describe('stage: all', () => {
  test('succeeds and publishes a byte-identical image at the live path', () => {
    expect(first.stdout).not.toMatch(/^\s+at /m);
    expect(first.status).toBe(0);
    expect(first.outputs['remote-path']).toBe(path.join(remoteDir, 'pytorch-24.10.sif'));
    expect(liveAfterFirst).toMatchObject({ sha256: first.outputs.sha256, sameAsLocal: true, aliasSame: true });
  });

  test('leaves no staging file or lock behind', () => {
    const leftovers = [remoteDir, path.join(remoteDir, '.staging')]
      .filter((d) => existsSync(d))
      .flatMap((d) => readdirSync(d).filter((f) => /partial|lock/.test(f)));
    expect(leftovers).toEqual([]);
  });

  test('ran the smoke command in the built image, and the steps in order', () => {
    expect(first.stdout).toContain('smoke-ok');
    const order = ['Build with apptainer', 'Stage over SFTP', 'Smoke test', 'Read docs table', 'Promote', 'Docs pull request'].map((g) =>
      first.stdout.indexOf(`::group::${g}`),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  test('opened one docs PR whose table points at the new image', () => {
    expect(first.outputs['pr-operation']).toBe('created');
    const pulls = github.pulls(DOCS);
    expect(pulls).toHaveLength(1);
    expect(first.outputs['pr-number']).toBe(String(pulls[0].number));
    const edited = github.file(DOCS, pulls[0].head, DOCS_FILE)!;
    expect(edited).toMatch(new RegExp(`^PyTorch +${remoteDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/pytorch-24\\.10\\.sif$`, 'm'));
    expect(liveAfterFirst.prBody).toContain(first.outputs.sha256);
    expect(liveAfterFirst.prBody).toContain('/lustre/share/img/pytorch-19.10-py3.simg');
    github.assertNoViolations();
  });

  test('a second run replaces the image and leaves the docs PR as it is: the same PR, unchanged', () => {
    expect(second.status).toBe(0);
    expect(second.outputs['pr-operation']).toBe('unchanged');
    expect(second.outputs['pr-number']).toBe(first.outputs['pr-number']);
    expect(github.pulls(DOCS)).toHaveLength(1);
    const live = path.join(remoteDir, 'pytorch-24.10.sif');
    expect(execFileSync('sha256sum', [live], { encoding: 'utf8' }).split(' ')[0]).toBe(second.outputs.sha256);
    // The body is refreshed to describe the image now published.
    expect(github.pulls(DOCS)[0].body).toContain(second.outputs.sha256);
  });

  test('a separate publish step refuses a staged file another run replaced, and changes nothing', async () => {
    const staged = second.outputs['staged-path'];
    expect(path.dirname(staged)).not.toBe(remoteDir);
    const live = path.join(remoteDir, 'pytorch-24.10.sif');
    const before = readFileSync(live);
    writeFileSync(staged, 'an image another run staged under the same name');
    chownSync(staged, sshd.uid, sshd.gid);
    const publishInputs: Record<string, string> = { ...inputs(), stage: 'publish', 'staged-sha256': second.outputs.sha256 };
    delete publishInputs.source;
    const run = await runBundledActionAsync(publishInputs, { cwd: work.dir, env: { GITHUB_REPOSITORY: 'sjtu-hpc/images', GITHUB_RUN_ID: '78' } });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`::error::.*the staged image ${staged} has sha256 [0-9a-f]{64}, not ${second.outputs.sha256}: another run staged over it; nothing was promoted`));
    expect(readFileSync(live).equals(before)).toBe(true);
    expect(existsSync(staged)).toBe(true);
    expect(github.pulls(DOCS)).toHaveLength(1);
    expect(readdirSync(path.dirname(staged)).filter((f) => /lock/.test(f))).toEqual([]);
    rmSync(staged);
  });

  test('a docs token without pull-request write fails the publish before anything moves: no rename, no branch', async () => {
    const readOnlyPulls = 'ghp_contents_only_0123456789';
    github.addToken(readOnlyPulls, { login: 'image-bot', repos: { [DOCS]: { contents: 'write', pullRequests: 'read' } } });
    const live = path.join(remoteDir, 'pytorch-24.10.sif');
    const before = readFileSync(live);
    const staged = second.outputs['staged-path'];
    writeFileSync(staged, 'a newer image, staged and verified');
    chownSync(staged, sshd.uid, sshd.gid);
    const sha = execFileSync('sha256sum', [staged], { encoding: 'utf8' }).split(' ')[0];
    const branches = github.branches(DOCS);
    const publishInputs: Record<string, string> = { ...inputs(), stage: 'publish', 'staged-sha256': sha, 'github-token': readOnlyPulls };
    delete publishInputs.source;
    const run = await runBundledActionAsync(publishInputs, { cwd: work.dir, env: { GITHUB_REPOSITORY: 'sjtu-hpc/images', GITHUB_RUN_ID: '79' } });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/::error::github-token cannot open a pull request in .*; give it pull requests: write\. Nothing was published/);
    expect(readFileSync(live).equals(before)).toBe(true);
    expect(existsSync(staged)).toBe(true);
    expect(github.branches(DOCS)).toEqual(branches);
    expect(run.stdout).not.toMatch(/GitHub client error/);
    expect(run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n')).not.toContain(readOnlyPulls);
    github.assertNoViolations();
    rmSync(staged);
  });

  test('no secret reaches the log, the outputs or the summary', () => {
    for (const run of [first, second]) {
      const visible = run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n');
      const keyLines = sshd.encryptedKey.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
      for (const secret of [TOKEN, sshd.passphrase, ...keyLines]) {
        expect(visible).not.toContain(secret);
        expect(run.summary).not.toContain(secret);
        expect(JSON.stringify(run.outputs)).not.toContain(secret);
      }
    }
  });
});
