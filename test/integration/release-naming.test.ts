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
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(240_000);

let registry: Registry;
let sshd: Sshd;
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
  try {
    await runPipeline(loadConfig((name) => given[name], { cwd: work.dir, env }), reporter);
    return { reporter };
  } catch (error) {
    return { reporter, message: describeError(error, (name) => `input ${name}`) };
  }
}

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
});

afterAll(async () => {
  await registry?.stop();
  await sshd?.stop();
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
