// The example workflows in workflows/, run job by job through the bundled action (test/helpers/workflow.ts): their
// `needs.*.outputs`, `if:` conditions and expressions as written, against local services — a registry with Basic
// auth standing in for NGC, a real OpenSSH server as the cluster's data node, a real Slurm with a dgx2 partition
// and a local GitHub for the docs PR. Overridden are only the addresses: host, port, remote directory, API URL.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { requireTools, tempDir } from '../helpers/tools.js';
import { actionStep, runWorkflow, type WorkflowContext, type WorkflowRun } from '../helpers/workflow.js';

jest.setTimeout(600_000);

const NGC = { username: '$oauthtoken', password: 'nvapi-workflowTEST0123456789abcdef' };
const DOCS = 'SJTU-HPC/docs.hpc.sjtu.edu.cn';
const DOCS_FILE = 'docs/container/preset_images.rst';
const DOCS_TOKEN = 'github_pat_workflowDOCS0123456789abcdefABCDEF';

let plain: Registry;
let ngc: Registry;
let sshd: Sshd;
let github: GitHubServer;
let slurm: Slurm;
const work = tempDir('bi-workflows-');
let remoteDir: string;

beforeAll(async () => {
  requireTools('apptainer');
  plain = await startRegistry();
  plain.pushBusybox('nvidia/pytorch', '24.10-py3', { FLAVOUR: '24.10-py3' });
  plain.pushBusybox('library/base', '1.0');
  ngc = await startRegistry({ storage: plain.dataDir, htpasswd: NGC });
  sshd = await startSshd();
  remoteDir = path.join(sshd.root, 'lustre', 'share', 'img');
  github = await startGitHubServer();
  github.createRepo(DOCS, { files: { [DOCS_FILE]: readFileSync('test/fixtures/docs/preset-images.rst', 'utf8') } });
  github.addToken(DOCS_TOKEN, { login: 'hpc-image-bot', repos: { [DOCS]: 'write' } });
  slurm = await startSlurm();
}, 180_000);

afterAll(async () => {
  await slurm?.stop();
  await github?.stop();
  await sshd?.stop();
  await ngc?.stop();
  await plain?.stop();
  work.cleanup();
});

function context(name: string, github: Record<string, string>, override: WorkflowContext['override']): WorkflowContext {
  const checkout = path.join(work.dir, name);
  const runnerTemp = path.join(work.dir, `${name}-runner-temp`);
  mkdirSync(checkout, { recursive: true });
  mkdirSync(runnerTemp, { recursive: true });
  return {
    github: { repository: 'sjtu-hpc/images', run_id: '7001', server_url: 'https://github.com', sha: 'a'.repeat(40), ...github },
    secrets: { NGC_API_KEY: NGC.password, HPC_SFTP_USER: sshd.user, HPC_SFTP_KEY: sshd.privateKey, DOCS_TOKEN },
    vars: { HPC_KNOWN_HOSTS: sshd.knownHostsLine },
    cwd: checkout,
    env: { PATH: process.env.PATH ?? '', RUNNER_TEMP: runnerTemp, SLURM_CONF: slurm.env.SLURM_CONF ?? '' },
    override,
    skipRunSteps: ['A build directory on the large disk'],
  };
}

/** What the cluster side must differ in: the data node's address and the directory under the test sshd's root. */
function cluster(inputs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (inputs['sftp-host']) Object.assign(out, { 'sftp-host': '127.0.0.1', 'sftp-port': String(sshd.port) });
  if (inputs['remote-dir']) out['remote-dir'] = remoteDir;
  if (inputs['github-token']) out['github-api-url'] = github.apiUrl;
  return out;
}

function noErrors(run: WorkflowRun): void {
  if (process.env.BI_WORKFLOW_LOG) writeFileSync(process.env.BI_WORKFLOW_LOG, run.log, { flag: 'a' });
  expect(run.log.match(/::error::.*/g)).toBeNull();
}

describe('workflows/nightly-pytorch.yml', () => {
  const nightly = (night: number): Promise<WorkflowRun> =>
    runWorkflow('workflows/nightly-pytorch.yml', context('nightly', { event_name: 'schedule', ref: 'refs/heads/main', ref_name: 'main', run_id: String(8000 + night) }, (job, inputs) => ({
      ...cluster(inputs),
      // NGC's registry is the local one with the same account; the hosted runner's /mnt is a directory here.
      ...(job === 'build' ? { source: `docker://${ngc.host}/nvidia/pytorch`, 'registry-insecure': 'true', 'tmp-dir': path.join(work.dir, 'mnt') } : {}),
      // The test node has 2 CPUs, and busybox has no Python for the PyTorch preset: the smoke test runs a command.
      ...(job === 'smoke' ? { 'cpus-per-task': '1', preset: 'none', 'smoke-command': 'echo flavour=$FLAVOUR', 'max-regression': undefined } : {}),
    })));
  let first: WorkflowRun;

  beforeAll(async () => {
    mkdirSync(path.join(work.dir, 'mnt'));
    first = await nightly(1);
  });

  test('the first night builds the newest NGC tag, smoke-tests it on dgx2 through sbatch, and publishes it behind the alias', () => {
    noErrors(first);
    expect(Object.fromEntries(Object.entries(first.jobs).map(([id, j]) => [id, j.succeeded]))).toEqual({ build: true, smoke: true, publish: true });
    expect(first.jobs.build.outputs).toMatchObject({ skipped: 'false', 'source-tag': '24.10-py3', 'remote-name': 'pytorch-24.10-py3.sif', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const smoke = actionStep(first, 'smoke');
    expect(smoke.inputs).toMatchObject({ stage: 'smoke', skipped: 'false', 'remote-name': 'pytorch-24.10-py3.sif', launcher: 'sbatch', partition: 'dgx2', gpus: '2' });
    expect(smoke.action!.stdout).toContain('flavour=24.10-py3');
    const published = path.join(remoteDir, 'pytorch-24.10-py3.sif');
    expect(statSync(published).size).toBeGreaterThan(0);
    expect(readFileSync(path.join(remoteDir, 'pytorch-latest.sif'))).toEqual(readFileSync(published));
    expect(actionStep(first, 'publish').inputs['staged-sha256']).toBe(first.jobs.build.outputs.sha256);
  });

  test('the separate publish job\'s PR body carries the sha256, the provenance and the smoke table', () => {
    const pulls = github.pulls(DOCS);
    expect(pulls).toHaveLength(1);
    const body = pulls[0].body;
    expect(body).toContain(first.jobs.build.outputs.sha256);
    const record = JSON.parse(readFileSync(path.join(remoteDir, 'pytorch-24.10-py3.provenance.json'), 'utf8'));
    expect(body).toContain(record.buildKey);
    expect(body).toContain(record.source.digest);
    expect(body).toContain('### Smoke test');
    expect(body).toContain('actions/runs/8001');
    expect(actionStep(first, 'publish').action!.summary).toContain(first.jobs.build.outputs.sha256);
    github.assertNoViolations();
  });

  test('the second night, with nothing changed upstream, skips: smoke and publish do not run, the PR is untouched', async () => {
    const prBefore = github.pulls(DOCS)[0];
    const second = await nightly(2);
    noErrors(second);
    expect(second.jobs.build.outputs).toMatchObject({ skipped: 'true', 'source-tag': '24.10-py3' });
    expect(second.jobs.smoke.ran).toBe(false);
    expect(second.jobs.publish.ran).toBe(false);
    expect(actionStep(second, 'build').action!.stdout).not.toMatch(/Building|apptainer build/);
    expect(github.pulls(DOCS)).toEqual([prBefore]);
  });

  test('a new monthly tag is picked up by itself on the third night, published, and the alias and PR follow it', async () => {
    plain.pushBusybox('nvidia/pytorch', '24.11-py3', { FLAVOUR: '24.11-py3' });
    const third = await nightly(3);
    noErrors(third);
    expect(third.jobs.build.outputs).toMatchObject({ skipped: 'false', 'source-tag': '24.11-py3', 'remote-name': 'pytorch-24.11-py3.sif' });
    expect(actionStep(third, 'smoke').action!.stdout).toContain('flavour=24.11-py3');
    expect(readFileSync(path.join(remoteDir, 'pytorch-latest.sif'))).toEqual(readFileSync(path.join(remoteDir, 'pytorch-24.11-py3.sif')));
    // keep: 3 — the previous version stays.
    expect(readdirSync(remoteDir).filter((f) => f.endsWith('.sif')).sort()).toEqual(['pytorch-24.10-py3.sif', 'pytorch-24.11-py3.sif', 'pytorch-latest.sif']);
    const pulls = github.pulls(DOCS);
    expect(pulls).toHaveLength(1);
    expect(pulls[0].body).toContain(third.jobs.build.outputs.sha256);
  });
});

describe('workflows/release.yml', () => {
  const definition = (extra = '') => `Bootstrap: docker
From: ${plain.host}/library/base:1.0

%arguments
    GROMACS_VERSION=0

%post
    mkdir -p /usr/bin
    printf '#!/bin/sh\\necho "GROMACS version {{ GROMACS_VERSION }}"\\n' > /usr/bin/gmx
    chmod 755 /usr/bin/gmx${extra}
`;
  const release = (): Promise<WorkflowRun> =>
    runWorkflow('workflows/release.yml', context('release', { event_name: 'push', ref: 'refs/tags/v2024.10', ref_name: 'v2024.10', ref_type: 'tag' }, (_job, inputs) => ({
      ...cluster(inputs),
      'registry-insecure': 'true',
      'cpus-per-task': '1', // the test node has 2 CPUs
    })));
  const checkout = () => path.join(work.dir, 'release');
  let first: WorkflowRun;

  beforeAll(async () => {
    mkdirSync(path.join(checkout(), 'images'), { recursive: true });
    writeFileSync(path.join(checkout(), 'images', 'gromacs.def'), definition());
    first = await release();
  });

  test('a pushed tag builds with the version from the tag, smoke-tests through srun and publishes the versioned name', () => {
    noErrors(first);
    expect(first.jobs.release.succeeded).toBe(true);
    const image = actionStep(first, 'release', 'image');
    expect(image.inputs['build-args'].trim()).toBe('GROMACS_VERSION=2024.10');
    expect(image.action!.stdout).toContain('GROMACS version 2024.10');
    expect(image.outputs['remote-path']).toBe(path.join(remoteDir, 'gromacs-v2024.10.sif'));
    expect(readFileSync(path.join(remoteDir, 'gromacs-latest.sif'))).toEqual(readFileSync(path.join(remoteDir, 'gromacs-v2024.10.sif')));
  });

  test('the attestation step is given the built SIF', () => {
    const attest = first.jobs.release.steps.find((s) => s.name.startsWith('actions/attest-build-provenance'))!;
    expect(attest.state).toBe('not-run');
    const subject = attest.inputs['subject-path'];
    expect(path.resolve(checkout(), subject)).toBe(path.resolve(checkout(), actionStep(first, 'release', 'image').outputs.image));
    expect(existsSync(path.resolve(checkout(), subject))).toBe(true);
  });

  test('re-running the tag unchanged is skipped, and nothing is attested', async () => {
    const again = await release();
    noErrors(again);
    expect(actionStep(again, 'release', 'image').outputs.skipped).toBe('true');
    expect(again.jobs.release.steps.find((s) => s.name.startsWith('actions/attest-build-provenance'))!.state).toBe('skipped');
  });

  test('re-running the tag with a changed definition fails before uploading; the published name is untouched', async () => {
    const before = readFileSync(path.join(remoteDir, 'gromacs-v2024.10.sif'));
    writeFileSync(path.join(checkout(), 'images', 'gromacs.def'), definition('\n    echo changed > /opt/changed'));
    const changed = await release();
    expect(changed.jobs.release.succeeded).toBe(false);
    expect(changed.log).toMatch(/::error::.*gromacs-v2024\.10\.sif/);
    expect(readFileSync(path.join(remoteDir, 'gromacs-v2024.10.sif'))).toEqual(before);
    expect(readdirSync(path.join(remoteDir, '.staging')).filter((f) => f.includes('gromacs'))).toEqual([]);
  });
});

describe('workflows/build-on-pr.yml', () => {
  test('a pull request builds the definition with its labels and uploads nothing', async () => {
    const dir = path.join(work.dir, 'pr', 'images');
    mkdirSync(dir, { recursive: true });
    mkdirSync(path.join(work.dir, 'pr-tmp'));
    writeFileSync(path.join(dir, 'pytorch.def'), `Bootstrap: docker\nFrom: ${plain.host}/library/base:1.0\n\n%post\n    mkdir -p /opt && echo pr > /opt/pr\n`);
    const run = await runWorkflow('workflows/build-on-pr.yml', context('pr', { event_name: 'pull_request', ref: 'refs/pull/12/merge', ref_name: '12/merge' }, () => ({
      'registry-insecure': 'true',
      'tmp-dir': path.join(work.dir, 'pr-tmp'),
    })));
    noErrors(run);
    const build = actionStep(run, 'build');
    expect(run.jobs.build.succeeded).toBe(true);
    expect(Object.keys(build.inputs).filter((k) => k.startsWith('sftp-') || k === 'github-token')).toEqual([]);
    expect(statSync(path.resolve(work.dir, 'pr', build.outputs.image)).size).toBeGreaterThan(0);
    expect(build.action!.summary).toContain(build.outputs.sha256);
  });
});
