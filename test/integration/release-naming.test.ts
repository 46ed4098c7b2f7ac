// Releases: a tag-triggered run publishes under a versioned name from a `remote-name` template and never replaces
// that name afterwards. Real registry, real apptainer, a real OpenSSH server as the cluster; the pipeline runs in
// this process from the sources.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { describeError } from '../../src/errors.js';
import { runPipeline } from '../../src/pipeline.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(240_000);

let registry: Registry;
let sshd: Sshd;
let github: GitHubServer;
const DOCS = 'sjtu-hpc/docs';
const DOCS_FILE = 'docs/container/preset_images.rst';
const TOKEN = 'ghp_releaseTOKEN0123456789abcdefABCDEFGHIJ';
const work = tempDir('bi-release-');
let remoteDir: string;
const RELEASE = { GITHUB_REF: 'refs/tags/v2024.10', GITHUB_SHA: 'c0ffee0123456789abcdef0123456789abcdef01' };

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    stage: 'all',
    name: 'gromacs',
    source: `docker://${registry.host}/gromacs:2024.10`,
    'registry-insecure': 'true',
    'sftp-host': '127.0.0.1',
    'sftp-port': String(sshd.port),
    'sftp-username': sshd.user,
    'sftp-private-key': sshd.privateKey,
    'sftp-known-hosts': sshd.knownHostsLine,
    'remote-dir': remoteDir,
    'remote-name': '{name}-{tag}-{git-tag}.sif',
    preset: 'none',
    'smoke-command': 'true',
    gpus: '0',
    baseline: 'none',
    ...extra,
  };
}

async function run(given: Record<string, string>, env: NodeJS.ProcessEnv = RELEASE): Promise<{ reporter: CaptureReporter; message?: string }> {
  const reporter = new CaptureReporter();
  // The run's context (labels, record, PR link) is read from the process environment, as on a runner.
  const saved = Object.fromEntries(GITHUB_VARS.map((k) => [k, process.env[k]]));
  for (const k of GITHUB_VARS) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    await runPipeline(loadConfig((name) => given[name], { cwd: work.dir, env }), reporter);
    return { reporter };
  } catch (error) {
    return { reporter, message: describeError(error, (name) => `input ${name}`) };
  } finally {
    for (const k of GITHUB_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

const GITHUB_VARS = ['GITHUB_REF', 'GITHUB_SHA', 'GITHUB_REPOSITORY', 'GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT', 'GITHUB_SERVER_URL', 'RUNNER_TEMP'];

/** Every file under the remote directory with its size, mtime and sha256: what "nothing changed" is checked against. */
function serverState(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      const st = statSync(file);
      if (st.isDirectory()) walk(file);
      else out[path.relative(remoteDir, file)] = `${st.size} ${st.mtimeMs} ${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;
    }
  };
  walk(remoteDir);
  return out;
}

beforeAll(async () => {
  requireTools('apptainer');
  registry = await startRegistry();
  registry.pushBusybox('gromacs', '2024.10');
  sshd = await startSshd();
  remoteDir = path.join(sshd.root, 'img');
  github = await startGitHubServer();
  github.createRepo(DOCS, { files: { [DOCS_FILE]: readFileSync('test/fixtures/docs/preset-images.rst', 'utf8') } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS]: 'write' } });
});

afterAll(async () => {
  await registry?.stop();
  await sshd?.stop();
  await github?.stop();
  work.cleanup();
});

describe('a release', () => {
  const live = () => path.join(remoteDir, 'gromacs-2024.10-v2024.10.sif');

  test('publishes under the name its template gives: {name}-{tag}-{git-tag}', async () => {
    const first = await run(inputs());
    expect(first.message).toBeUndefined();
    expect(first.reporter.outputs['remote-name']).toBe('gromacs-2024.10-v2024.10.sif');
    expect(first.reporter.outputs['remote-path']).toBe(live());
    expect(existsSync(live())).toBe(true);
  });

  test('a re-run with changed inputs fails before building or uploading, and nothing changes on the server', async () => {
    const before = serverState();
    const again = await run(inputs({ labels: 'rebuilt=yes' }));
    expect(again.message).toBe(
      `input remote-name: ${live()} exists already, and immutable is on (the default for a tag-triggered run): a published name is never replaced. Nothing was built, uploaded or changed on the server. Publish under a new name (e.g. a remote-name with {git-tag}), or set immutable: false to replace it`,
    );
    expect(again.reporter.text()).not.toContain('▸ Build with');
    expect(again.reporter.text()).not.toContain('▸ Stage over SFTP');
    expect(serverState()).toEqual(before);
  });

  test('force does not get past an immutable name either', async () => {
    const before = serverState();
    const forced = await run(inputs({ force: 'true' }));
    expect(forced.message).toMatch(/^input remote-name: .* exists already, and immutable is on/);
    expect(serverState()).toEqual(before);
  });

  test('a re-run with the same inputs is skipped as unchanged, not refused', async () => {
    const before = serverState();
    const rerun = await run(inputs());
    expect(rerun.message).toBeUndefined();
    expect(rerun.reporter.outputs.skipped).toBe('true');
    expect(serverState()).toEqual(before);
  });

  test('a separate publish job refuses to promote over the published name, and nothing changes', async () => {
    // Another run's image, staged under the same name.
    const staging = path.join(remoteDir, '.staging');
    mkdirSync(staging, { recursive: true });
    chownSync(staging, sshd.uid, sshd.gid);
    writeFileSync(path.join(staging, 'gromacs-2024.10-v2024.10.sif'), 'another build');
    chownSync(path.join(staging, 'gromacs-2024.10-v2024.10.sif'), sshd.uid, sshd.gid);
    const before = serverState();
    const { source: _s, ...publish } = inputs({ stage: 'publish', 'remote-name': 'gromacs-2024.10-{git-tag}.sif' });
    const refused = await run(publish);
    expect(refused.message).toMatch(/^input remote-name: .*gromacs-2024\.10-v2024\.10\.sif exists already, and immutable is on/);
    expect(serverState()).toEqual(before);
  });

  test('a branch run (not tag-triggered) is not immutable by default: it replaces the name', async () => {
    const replaced = await run(inputs({ labels: 'rebuilt=yes', 'remote-name': 'gromacs-{tag}-v2024.10.sif' }), { GITHUB_REF: 'refs/heads/main' });
    expect(replaced.message).toBeUndefined();
    expect(replaced.reporter.outputs['remote-path']).toBe(live());
    expect(readFileSync(live()).length).toBeGreaterThan(0);
  });
});

describe('the provenance record, job by job as the nightly runs them', () => {
  const env = { GITHUB_REPOSITORY: 'sjtu-hpc/images', GITHUB_RUN_ID: '900', GITHUB_SHA: 'b'.repeat(40), GITHUB_REF: 'refs/heads/main' };
  const job = (stage: string, extra: Record<string, string> = {}) => {
    const { source: _s, ...common } = inputs({ stage, name: 'lammps', 'remote-name': 'lammps-{tag}.sif', ...extra });
    return common;
  };

  test('build, smoke and publish jobs carry one record; the publish job\'s PR body and summary have the evidence', async () => {
    registry.pushBusybox('lammps', '2025.1');
    mkdirSync(path.join(work.dir, 'runner-temp'));
    const source = `docker://${registry.host}/lammps:2025.1`;
    const built = await run({ ...job('build'), source }, env);
    expect(built.message).toBeUndefined();
    const local = built.reporter.outputs.provenance;
    expect(local).toBe(path.join(work.dir, 'lammps.provenance.json'));
    const fromBuild = JSON.parse(readFileSync(local, 'utf8'));
    expect(fromBuild).toMatchObject({
      tool: 'build-image',
      revision: 'b'.repeat(40),
      runUrl: 'https://github.com/sjtu-hpc/images/actions/runs/900',
      source: { uri: source, digest: expect.stringMatching(/^sha256:/) },
      image: { sha256: built.reporter.outputs.sha256 },
      builder: { product: 'apptainer', version: expect.any(String) },
    });
    const staged = path.join(remoteDir, '.staging', 'lammps-2025.1.provenance.json');
    expect(JSON.parse(readFileSync(staged, 'utf8'))).toEqual(fromBuild);

    // The smoke job sees the staged image and record on the cluster's file system (here: the same machine).
    const smoked = await run(job('smoke', { 'remote-name': built.reporter.outputs['remote-name'] }), env);
    expect(smoked.message).toBeUndefined();
    const afterSmoke = JSON.parse(readFileSync(staged, 'utf8'));
    expect(afterSmoke.smoke.json).toEqual(JSON.parse(smoked.reporter.outputs['smoke-json']));

    // The publish job: {tag} comes from the build job's remote-name output here, as a workflow passes it.
    const published = await run(
      {
        ...job('publish', { 'remote-name': built.reporter.outputs['remote-name'], 'staged-sha256': built.reporter.outputs.sha256 }),
        'github-token': TOKEN,
        'github-api-url': github.apiUrl,
        'docs-repo': DOCS,
        'docs-file': DOCS_FILE,
        software: 'LAMMPS',
      },
      { ...env, GITHUB_RUN_ID: '901', RUNNER_TEMP: path.join(work.dir, 'runner-temp') },
    );
    expect(published.message).toBeUndefined();
    const body = github.pulls(DOCS)[0].body;
    expect(body).toContain(built.reporter.outputs.sha256);
    expect(body).toContain(fromBuild.buildKey);
    expect(body).toContain(fromBuild.source.digest);
    expect(body).toContain('### Smoke test');
    expect(body).toContain(afterSmoke.smoke.markdown.trim().split('\n')[0]);
    // The run link is the build's, where the image came from.
    expect(body).toContain('actions/runs/900');
    const live = path.join(remoteDir, 'lammps-2025.1.provenance.json');
    const final = JSON.parse(readFileSync(live, 'utf8'));
    expect(final).toMatchObject({ buildKey: fromBuild.buildKey, remotePath: path.join(remoteDir, 'lammps-2025.1.sif'), prUrl: published.reporter.outputs['pr-url'] });
    expect(existsSync(staged)).toBe(false);
    expect(published.reporter.outputs.provenance).toBe(path.join(work.dir, 'runner-temp', 'lammps-2025.1.provenance.json'));
    expect(JSON.parse(readFileSync(published.reporter.outputs.provenance, 'utf8'))).toEqual(final);
    expect(published.reporter.text()).toMatch(/build-image: provenance\n=+\nPublished +\S+lammps-2025\.1\.sif\nSHA-256 +[0-9a-f]{64}/);
    github.assertNoViolations();
  });
});
