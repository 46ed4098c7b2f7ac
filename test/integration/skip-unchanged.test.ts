// Skip unchanged, end to end: a real registry, real apptainer builds of a small definition with a `%files`
// payload, a real OpenSSH server as the cluster and the
// docs PR on a local GitHub. The pipeline runs in this process from the sources, as the action runs it.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../src/config/config.js';
import { runPipeline } from '../../src/pipeline.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { randomFile } from '../helpers/files.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(300_000);

const DOCS = 'sjtu-hpc/docs';
const DOCS_FILE = 'docs/container/preset_images.rst';
const TOKEN = 'ghp_skipTOKENskip0123456789abcdefABCDEFGH';
/** Incompressible payload: the published image is ~40 MB, so 0.1 % of it is ~40 kB. */
const PAYLOAD_BYTES = 40 * 1024 * 1024;


let registry: Registry;
let sshd: Sshd;
let github: GitHubServer;
const work = tempDir('bi-skip-');
const builderLog = path.join(work.dir, 'builder.log');
let remoteDir: string;
let livePath: string;
const savedPath = process.env.PATH;

const DEFINITION = (registryHost: string, post = 'echo "{{ FLAVOUR }}" > /opt/flavour') => `Bootstrap: docker
From: ${registryHost}/tiny:1.0

%arguments
    FLAVOUR=plain

%files
    ${path.join(work.dir, 'data')}/* /opt/data/

%post
    ${post}
`;

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    stage: 'all',
    name: 'tiny',
    definition: 'tiny.def',
    'registry-insecure': 'true',
    'sftp-host': '127.0.0.1',
    'sftp-port': String(sshd.port),
    'sftp-username': sshd.user,
    'sftp-private-key': sshd.privateKey,
    'sftp-known-hosts': sshd.knownHostsLine,
    'remote-dir': remoteDir,
    'remote-name': 'tiny-1.0.sif',
    preset: 'none',
    'smoke-command': 'cat /opt/flavour',
    gpus: '0',
    baseline: 'none',
    'github-token': TOKEN,
    'github-api-url': github.apiUrl,
    'docs-repo': DOCS,
    'docs-file': DOCS_FILE,
    software: 'Tiny',
    // Not a release, whatever GITHUB_REF the test runs under (release-naming.test.ts covers immutable names).
    immutable: 'false',
    ...extra,
  };
}

async function run(given: Record<string, string>): Promise<{ reporter: CaptureReporter; builds: string[]; error?: Error }> {
  const before = builderCalls().length;
  const reporter = new CaptureReporter();
  let error: Error | undefined;
  try {
    const config = loadConfig((name) => given[name], { cwd: work.dir });
    await runPipeline(config, reporter);
  } catch (e) {
    error = e as Error;
  }
  return { reporter, builds: builderCalls().slice(before).filter((l) => /^build\b/.test(l)), error };
}

function builderCalls(): string[] {
  try {
    return readFileSync(builderLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

beforeAll(async () => {
  requireTools('apptainer');
  registry = await startRegistry();
  registry.pushBusybox('tiny', '1.0');
  sshd = await startSshd();
  remoteDir = path.join(sshd.root, 'img');
  livePath = path.join(remoteDir, 'tiny-1.0.sif');
  github = await startGitHubServer();
  github.createRepo(DOCS, { files: { [DOCS_FILE]: readFileSync('test/fixtures/docs/preset-images.rst', 'utf8') } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS]: 'write' } });
  // The builder, wrapped so the test sees every time it is started and with which command.
  const wrapDir = path.join(work.dir, 'bin');
  mkdirSync(wrapDir);
  const real = execFileSync('sh', ['-c', 'command -v apptainer'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(wrapDir, 'apptainer'), `#!/bin/sh\necho "$*" >> ${builderLog}\nexec ${real} "$@"\n`);
  chmodSync(path.join(wrapDir, 'apptainer'), 0o755);
  process.env.PATH = `${wrapDir}:${savedPath}`;
  mkdirSync(path.join(work.dir, 'data'));
  randomFile(path.join(work.dir, 'data', 'payload.bin'), PAYLOAD_BYTES);
  writeFileSync(path.join(work.dir, 'data', 'settings.conf'), 'threads=4\n');
  writeFileSync(path.join(work.dir, 'tiny.def'), DEFINITION(registry.host));
});

afterAll(async () => {
  process.env.PATH = savedPath;
  await registry?.stop();
  await sshd?.stop();
  await github?.stop();
  work.cleanup();
});

describe('skip unchanged', () => {
  let firstKey: string;

  test('the first run builds, publishes and opens the docs PR', async () => {
    const first = await run(inputs());
    expect(first.error).toBeUndefined();
    expect(first.builds).toHaveLength(1);
    expect(first.reporter.outputs.skipped).toBe('false');
    expect(first.reporter.text()).toContain(`nothing published at ${livePath} yet: building`);
    expect(statSync(livePath).size).toBeGreaterThan(PAYLOAD_BYTES);
    expect(github.pulls(DOCS)).toHaveLength(1);
    firstKey = first.reporter.outputs['build-key'];
  });

  test('an unchanged second run starts no builder, reads < 0.1 % of the published image and opens no PR', async () => {
    const live = readFileSync(livePath);
    const requests = github.exchanges.length;
    const second = await run(inputs());
    expect(second.error).toBeUndefined();
    expect(second.builds).toEqual([]);
    expect(second.reporter.outputs).toMatchObject({ skipped: 'true', 'build-key': firstKey });
    expect(second.reporter.outputs['skip-reason']).toBe(
      `the image published at ${livePath} was built from the same inputs (build key ${firstKey}); force: true rebuilds anyway`,
    );
    // The reason is in the summary; no upload, smoke test, promotion or PR followed.
    expect(second.reporter.text()).toMatch(/build-image: skipped, unchanged\n=+\nSkipped +the image published at/);
    for (const step of ['staged-path', 'smoke-json', 'remote-path', 'pr-url']) expect(second.reporter.outputs[step]).toBeUndefined();
    expect(second.reporter.text()).not.toContain('▸ Stage over SFTP');
    expect(github.exchanges.length).toBe(requests);
    expect(readFileSync(livePath).equals(live)).toBe(true);
    // Every SFTP read of the check is counted and shown.
    const m = new RegExp(`^read (\\d+) of ${live.length} bytes of ${livePath} \\(SIF header, descriptors, labels\\)$`, 'm').exec(second.reporter.text());
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1]) / live.length).toBeLessThan(0.001);
  });

  test('smoke and publish run as separate jobs skip themselves when given skipped: true', async () => {
    const { name: _n, definition: _d, ...rest } = inputs();
    for (const stage of ['smoke', 'publish']) {
      const requests = github.exchanges.length;
      const job = await run({ ...rest, name: 'tiny', stage, skipped: 'true' });
      expect(job.error).toBeUndefined();
      expect(job.reporter.outputs.skipped).toBe('true');
      expect(job.reporter.text()).toContain('skipped: the build job found the published image unchanged (input skipped: true)');
      expect(github.exchanges.length).toBe(requests);
    }
  });

  // What the run decides is shown by a dry run (it prints the builder's command instead of running it); the
  // headline cases (%files content, force, a new source digest) build for real.
  test.each<[string, () => void, Record<string, string>, () => void]>([
    ['a changed definition', () => writeFileSync(path.join(work.dir, 'tiny.def'), DEFINITION(registry.host, 'echo "{{ FLAVOUR }}" > /opt/flavour; true')), { 'dry-run': 'true' }, () => writeFileSync(path.join(work.dir, 'tiny.def'), DEFINITION(registry.host))],
    ['a changed build argument', () => undefined, { 'build-args': 'FLAVOUR=spicy', 'dry-run': 'true' }, () => undefined],
    ['a new file matched by a %files glob', () => writeFileSync(path.join(work.dir, 'data', 'extra.txt'), 'x'), { 'dry-run': 'true' }, () => rmSync(path.join(work.dir, 'data', 'extra.txt'))],
    ['a changed key-inputs command output', () => undefined, { 'key-inputs': 'nightly\n$ echo torch-2.6.0.dev20261130', 'dry-run': 'true' }, () => undefined],
    ['changed %files content', () => writeFileSync(path.join(work.dir, 'data', 'settings.conf'), 'threads=8\n'), {}, () => writeFileSync(path.join(work.dir, 'data', 'settings.conf'), 'threads=4\n')],
    ['force: true', () => undefined, { force: 'true' }, () => undefined],
  ])('%s rebuilds', async (_what, change, extra, undo) => {
    change();
    try {
      // stage: build compares with the image published by the first run, then builds and stages; nothing is promoted.
      const rebuilt = await run(inputs({ stage: 'build', ...extra }));
      expect(rebuilt.error).toBeUndefined();
      expect(rebuilt.reporter.outputs.skipped).toBe('false');
      if (extra['dry-run']) expect(rebuilt.reporter.text()).toMatch(/^would run: \S*apptainer build /m);
      else expect(rebuilt.builds).toHaveLength(1);
      if (extra.force) expect(rebuilt.reporter.text()).toContain('force: true: building without comparing with the published image');
      else {
        expect(rebuilt.reporter.outputs['build-key']).not.toBe(firstKey);
        expect(rebuilt.reporter.text()).toContain(`${livePath} has build key ${firstKey}; this build's is ${rebuilt.reporter.outputs['build-key']}: building`);
      }
    } finally {
      undo();
    }
  });

  test('a key-inputs command that fails stops the run before anything is built, naming the line', async () => {
    const failed = await run(inputs({ stage: 'build', 'key-inputs': 'a\n$ exit 3' }));
    expect(failed.builds).toEqual([]);
    expect(failed.error?.message).toMatch(/^key-inputs line 2: `exit 3` exited 3; nothing was built/);
  });

  test('a new source digest rebuilds (pushed last: it changes the base for good)', async () => {
    registry.pushBusybox('tiny', '1.0', { GREETING: 'a-new-upstream' });
    const rebuilt = await run(inputs({ stage: 'build' }));
    expect(rebuilt.error).toBeUndefined();
    expect(rebuilt.builds).toHaveLength(1);
    expect(rebuilt.reporter.outputs.skipped).toBe('false');
    expect(rebuilt.reporter.text()).toMatch(/has build key sha256:[0-9a-f]{64}; this build's is sha256:[0-9a-f]{64}: building/);
  });
});
