// Publishing under injected faults, on the real sshd: the connection is cut or stalled in either direction at
// every ~100 bytes of the whole publish conversation (connecting, locks, the server's hash, the rename, the
// manifest, the alias, retention), and the CLI is killed with SIGKILL mid-promotion. A wrong staged file must never
// go live; the right one must always end live, with the alias on it, retention done and no lock or draft left,
// after at most one clean re-run.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SftpTarget } from '../../src/publish/connect.js';
import { loadConfig } from '../../src/config/config.js';
import { runPipeline } from '../../src/pipeline.js';
import { promoteImage, type PromoteOptions } from '../../src/publish/promote.js';
import type { Fault } from '../helpers/cut-proxy.js';
import { parseOutputs } from '../helpers/action.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js';
import { randomFile, sha256File } from '../helpers/files.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

let sshd: Sshd;
let proxy: CutProxy;
let local: { dir: string; cleanup: () => void };
let right: { path: string; sha: string };
let wrong: { path: string; sha: string };
let keyFile: string;

beforeAll(async () => {
  sshd = await startSshd();
  proxy = await startCutProxy(sshd.port);
  local = tempDir('bi-faults-');
  right = { path: path.join(local.dir, 'right.sif'), sha: '' };
  wrong = { path: path.join(local.dir, 'wrong.sif'), sha: '' };
  right.sha = randomFile(right.path, 96 * 1024);
  wrong.sha = randomFile(wrong.path, 96 * 1024);
  keyFile = path.join(local.dir, 'key');
  writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await sshd?.stop();
  local?.cleanup();
});

function target(port: number): SftpTarget {
  return { host: sshd.host, port, username: sshd.user, privateKey: sshd.privateKey, fingerprint: sshd.fingerprint };
}

function own(file: string): void {
  chownSync(file, sshd.uid, sshd.gid);
}

/**
 * A cluster directory as a publish finds it: `tool-2.0.sif` staged (the right or the wrong file), an older version
 * this tool published (in its manifest), and an older one uploaded by hand (no record, no labels).
 */
function scenario(name: string, staged: { path: string }): { staging: string; live: string } {
  const staging = path.join(sshd.root, 'faults', name, 'staging');
  const live = path.join(sshd.root, 'faults', name, 'live');
  for (const dir of [staging, live]) {
    mkdirSync(dir, { recursive: true });
    own(dir);
  }
  copyFileSync(staged.path, `${staging}/tool-2.0.sif`);
  own(`${staging}/tool-2.0.sif`);
  const old = new Date(Date.now() - 3600_000);
  for (const file of ['tool-1.0.sif', 'tool-0.9.sif']) {
    writeFileSync(`${live}/${file}`, file);
    own(`${live}/${file}`);
    utimesSync(`${live}/${file}`, old, old);
  }
  writeFileSync(`${live}/.build-image.json`, JSON.stringify({ tool: 'build-image', images: { 'tool-1.0.sif': { family: 'tool', size: 12, published: old.toISOString() } } }));
  own(`${live}/.build-image.json`);
  return { staging, live };
}

function options(dirs: { staging: string; live: string }, port: number, extra: Partial<PromoteOptions> = {}): PromoteOptions {
  return {
    target: target(port),
    stagedPath: `${dirs.staging}/tool-2.0.sif`,
    stagedSha256: right.sha,
    remoteDir: dirs.live,
    remoteName: 'tool-2.0.sif',
    alias: 'tool.sif',
    keep: 1,
    lockTimeoutMs: 30_000,
    protectedPaths: [],
    reporter: new CaptureReporter(),
    // A stalled link is noticed after three unanswered keepalives (0.75 s) instead of 30 s.
    connect: { retryDelayMs: 10, retries: 2, keepaliveIntervalMs: 250, readyTimeoutMs: 5000 },
    ...extra,
  };
}

/** The publish conversation's length in each direction, measured on a clean run through the proxy. */
async function conversation(staged: { path: string }): Promise<{ up: number; down: number }> {
  const dirs = scenario(`measure-${path.basename(staged.path)}`, staged);
  const first = proxy.sent.length;
  proxy.planFaults([]);
  await promoteImage(options(dirs, proxy.port)).catch(() => undefined);
  const sum = (counts: number[]) => counts.slice(first).reduce((a, b) => a + b, 0);
  return { up: sum(proxy.sent), down: sum(proxy.received) };
}

/** Cut points every `step` bytes in both directions, and stalls at a few of them. */
function faultsAcross(length: { up: number; down: number }, step: number): Fault[] {
  const faults: Fault[] = [];
  for (const dir of ['up', 'down'] as const) {
    for (let at = step; at < length[dir]; at += step) faults.push({ dir, at, kind: 'cut' });
    for (const share of [0.35, 0.6, 0.9]) faults.push({ dir, at: Math.floor(length[dir] * share), kind: 'stall' });
  }
  return faults;
}

function describeFault(f: Fault): string {
  return `${f.kind} ${f.dir === 'up' ? 'client→server' : 'server→client'} at ${f.at}`;
}

/** Locks, lock drafts, stale locks moved aside, manifest and alias drafts: nothing of a run may stay behind. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => /\.lock|\.new$|\.tmp$|\.stale-/.test(n));
}

describe('publishing under cuts and stalls', () => {
  test('a wrong staged file never goes live, whatever point of the conversation is cut or stalled', async () => {
    const length = await conversation(wrong);
    const faults = faultsAcross(length, 100);
    const outcomes = new Map<string, number>();
    for (const [i, fault] of faults.entries()) {
      const dirs = scenario(`wrong-${i}`, wrong);
      proxy.planFaults([fault]);
      const result = await promoteImage(options(dirs, proxy.port, { maxResumes: 1 })).then(
        () => 'promoted',
        (e: Error) => e.message,
      );
      expect([describeFault(fault), existsSync(`${dirs.live}/tool-2.0.sif`)]).toEqual([describeFault(fault), false]);
      expect(existsSync(`${dirs.live}/tool.sif`)).toBe(false);
      expect(sha256File(`${dirs.staging}/tool-2.0.sif`)).toBe(wrong.sha);
      const kind = /has sha256 [0-9a-f]{64}, not/.test(result) ? 'refused: wrong sha256' : result.replace(/\/\S+/g, 'PATH').slice(0, 80);
      outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
    }
    // Most runs reconnected and refused for the right reason; none was promoted.
    expect(outcomes.get('promoted')).toBeUndefined();
    expect(outcomes.get('refused: wrong sha256') ?? 0).toBeGreaterThan(faults.length / 2);
    process.stdout.write(`wrong file: ${faults.length} faults over ${length.up} B up / ${length.down} B down: ${JSON.stringify([...outcomes])}\n`);
  }, 600_000);

  test('the right staged file always ends live after one clean re-run: alias on it, retention done, no lock or draft left', async () => {
    const length = await conversation(right);
    const faults = faultsAcross(length, 100);
    let interrupted = 0;
    for (const [i, fault] of faults.entries()) {
      const dirs = scenario(`right-${i}`, right);
      proxy.planFaults([fault]);
      // No reconnect: the fault ends the run wherever it falls, and the re-run must finish the job.
      const first = await promoteImage(options(dirs, proxy.port, { maxResumes: 0 })).then(
        () => undefined,
        (e: Error) => e,
      );
      if (first) interrupted++;
      const again = await promoteImage(options(dirs, sshd.port));
      const label = describeFault(fault);
      expect([label, again.operation]).toEqual([label, first ? expect.stringMatching(/^(already-)?promoted$/) : 'already-promoted']);
      expect([label, sha256File(`${dirs.live}/tool-2.0.sif`)]).toEqual([label, right.sha]);
      expect([label, readlinkSync(`${dirs.live}/tool.sif`)]).toEqual([label, 'tool-2.0.sif']);
      // The older version this tool published is gone; the hand-uploaded one stays.
      expect([label, readdirSync(dirs.live).sort()]).toEqual([label, ['.build-image.json', 'tool-0.9.sif', 'tool-2.0.sif', 'tool.sif']]);
      expect([label, leftovers(dirs.staging), readdirSync(dirs.staging)]).toEqual([label, [], []]);
    }
    expect(interrupted).toBeGreaterThan(faults.length / 2);
    process.stdout.write(`right file: ${faults.length} faults over ${length.up} B up / ${length.down} B down, ${interrupted} interrupted runs, all converged\n`);
  }, 600_000);
});

function cliArgs(dirs: { staging: string; live: string }, port: number, extra: string[] = []): string[] {
  return [
    path.resolve('dist/cli.js'), 'publish', '--sftp-host', sshd.host, '--sftp-port', String(port), '--sftp-username', sshd.user,
    '--sftp-private-key-file', keyFile, '--sftp-host-fingerprint', sshd.fingerprint, '--staging-dir', dirs.staging, '--remote-dir', dirs.live,
    '--remote-name', 'tool-2.0.sif', '--alias', 'tool.sif', '--keep', '1', '--staged-sha256', right.sha, ...extra,
  ];
}

/**
 * Runs the CLI's publish through the proxy until it stalls at `fault`, then kills it with SIGKILL. The publish job
 * reads the staged provenance record and promotes over one connection, so the fault lands on it.
 */
async function publishKilledAt(dirs: { staging: string; live: string }, fault: Fault): Promise<void> {
  proxy.planFaults([fault]);
  const stalled = proxy.stalled();
  const child = spawn(process.execPath, cliArgs(dirs, proxy.port), { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  await Promise.race([stalled, exited]);
  child.kill('SIGKILL');
  await exited;
}

describe('a publisher killed with SIGKILL', () => {
  test('the next publish takes over its lock once stale and converges, at several moments of promotion', async () => {
    const length = await conversation(right);
    const results: string[] = [];
    for (const share of [0.5, 0.7, 0.85, 0.95]) {
      const dirs = scenario(`kill-${share}`, right);
      const fault: Fault = { dir: 'down', at: Math.floor(length.down * share), kind: 'stall' };
      await publishKilledAt(dirs, fault);
      // Killed while holding the lock: what the next publisher must get past.
      expect([describeFault(fault), existsSync(`${dirs.live}/.tool-2.0.sif.lock`)]).toEqual([describeFault(fault), true]);
      const started = Date.now();
      const again = spawnSync(process.execPath, cliArgs(dirs, sshd.port, ['--lock-stale', '3s']), { encoding: 'utf8', timeout: 120_000 });
      const seconds = (Date.now() - started) / 1000;
      expect([describeFault(fault), again.status, again.stderr.match(/^error: .*/m)?.[0]]).toEqual([describeFault(fault), 0, undefined]);
      // Within lock-stale plus a minute, as a next publisher with a 3 s lock-stale must.
      expect(seconds).toBeLessThan(3 + 60);
      expect(sha256File(`${dirs.live}/tool-2.0.sif`)).toBe(right.sha);
      expect(readlinkSync(`${dirs.live}/tool.sif`)).toBe('tool-2.0.sif');
      expect(readdirSync(dirs.live).sort()).toEqual(['.build-image.json', 'tool-0.9.sif', 'tool-2.0.sif', 'tool.sif']);
      expect(leftovers(dirs.staging)).toEqual([]);
      results.push(`${describeFault(fault)}: ${/took over a stale lock/.test(again.stderr) ? 'took over the lock' : 'no lock left'}, ${seconds.toFixed(1)} s`);
    }
    process.stdout.write(`kill -9: ${results.join('; ')}\n`);
  }, 300_000);

  test('with default settings, the next publish after a kill finishes within lock-stale (2 min) plus a minute', async () => {
    const length = await conversation(right);
    const dirs = scenario('kill-default', right);
    await publishKilledAt(dirs, { dir: 'down', at: Math.floor(length.down * 0.7), kind: 'stall' });
    expect(existsSync(`${dirs.live}/.tool-2.0.sif.lock`)).toBe(true);
    const started = Date.now();
    const again = await new Promise<{ status: number | null; err: string }>((resolve) => {
      const next = spawn(process.execPath, cliArgs(dirs, sshd.port), { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      next.stderr!.on('data', (d) => (err += d));
      next.once('exit', (status) => resolve({ status, err }));
    });
    const seconds = (Date.now() - started) / 1000;
    expect([again.status, again.err.match(/^error: .*/m)?.[0]]).toEqual([0, undefined]);
    expect(again.err).toMatch(/took over a stale lock .*stale after 120 s/);
    expect(seconds).toBeLessThan(120 + 60);
    expect(sha256File(`${dirs.live}/tool-2.0.sif`)).toBe(right.sha);
    expect(readdirSync(dirs.live).sort()).toEqual(['.build-image.json', 'tool-0.9.sif', 'tool-2.0.sif', 'tool.sif']);
    process.stdout.write(`kill -9 with default lock-stale: the next publish finished in ${seconds.toFixed(1)} s\n`);
  }, 240_000);

  test("the action's post step releases the lock of a main step killed while waiting, at once", async () => {
    const dirs = scenario('post', right);
    // Another run holds the staging lock and keeps it fresh: the main step takes the live lock, then waits.
    const stagingLock = `${dirs.staging}/.tool-2.0.sif.partial.lock`;
    writeFileSync(stagingLock, 'owner: another-run\nrun: -\ntime: 2026-01-01T00:00:00Z\ntoken: other\n');
    const refresh = setInterval(() => utimesSync(stagingLock, new Date(), new Date()), 200);
    const runner = tempDir('bi-post-');
    try {
      // The files a runner provides: state for the post step, outputs.
      const stateFile = path.join(runner.dir, 'state');
      writeFileSync(stateFile, '');
      writeFileSync(path.join(runner.dir, 'out'), '');
      const inputs: Record<string, string> = {
        stage: 'publish', 'sftp-host': sshd.host, 'sftp-port': String(sshd.port), 'sftp-username': sshd.user, 'sftp-private-key': sshd.privateKey,
        'sftp-host-fingerprint': sshd.fingerprint, 'staging-dir': dirs.staging, 'remote-dir': dirs.live, 'remote-name': 'tool-2.0.sif',
        'staged-sha256': right.sha, keep: '1',
      };
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_STATE: stateFile, GITHUB_OUTPUT: path.join(runner.dir, 'out') };
      for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
      const main = spawn(process.execPath, [path.resolve('dist/index.js')], { env, stdio: 'ignore' });
      const liveLock = `${dirs.live}/.tool-2.0.sif.lock`;
      const deadline = Date.now() + 30_000;
      while (!existsSync(liveLock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(existsSync(liveLock)).toBe(true);
      main.kill('SIGKILL');
      await new Promise((r) => main.once('exit', r));
      expect(existsSync(liveLock)).toBe(true);

      const state = parseOutputs(readFileSync(stateFile, 'utf8'));
      const post = spawnSync(process.execPath, [path.resolve('dist/post.js')], { env: { ...env, STATE_resources: state.resources }, encoding: 'utf8', timeout: 60_000 });
      expect(post.status).toBe(0);
      expect(post.stdout).toContain(`released the lock ${liveLock}`);
      expect(existsSync(liveLock)).toBe(false);
      // Another run's lock is not ours to release.
      expect(existsSync(stagingLock)).toBe(true);
      expect(existsSync(`${dirs.live}/tool-2.0.sif`)).toBe(false);
    } finally {
      clearInterval(refresh);
      runner.cleanup();
    }
  }, 90_000);
});

describe("the publish job's staged provenance record", () => {
  /** A record as a build job stages it, made large (a long smoke table) so a cut can fall inside its reading. */
  function stageRecord(dirs: { staging: string }): { buildKey: string } {
    const record = {
      tool: 'build-image', toolVersion: '0.1.0', created: new Date().toISOString(), source: { uri: 'docker://example/tool:2.0' }, buildKey: `key-${dirs.staging.length}`,
      image: { sha256: right.sha, size: 96 * 1024 }, builder: { product: 'apptainer', version: '1.3.4', fakeroot: false },
      smoke: { json: { ok: true }, markdown: `| metric | value |\n${'| x | 1 |\n'.repeat(20_000)}` },
    };
    writeFileSync(`${dirs.staging}/tool-2.0.provenance.json`, JSON.stringify(record));
    own(`${dirs.staging}/tool-2.0.provenance.json`);
    return record;
  }

  /** `stage: publish` through the proxy, from the sources (the record read and promotion share one connection). */
  async function publishJob(dirs: { staging: string; live: string }): Promise<{ reporter: CaptureReporter; error?: Error }> {
    const inputs: Record<string, string> = {
      stage: 'publish', 'sftp-host': sshd.host, 'sftp-port': String(proxy.port), 'sftp-username': sshd.user, 'sftp-private-key': sshd.privateKey,
      'sftp-host-fingerprint': sshd.fingerprint, 'staging-dir': dirs.staging, 'remote-dir': dirs.live, 'remote-name': 'tool-2.0.sif', alias: 'tool.sif', keep: '1',
      'staged-sha256': right.sha,
    };
    const reporter = new CaptureReporter();
    const runnerTemp = process.env.RUNNER_TEMP;
    process.env.RUNNER_TEMP = local.dir;
    try {
      await runPipeline(loadConfig((name) => inputs[name], { env: {} }), reporter);
      return { reporter };
    } catch (error) {
      return { reporter, error: error as Error };
    } finally {
      if (runnerTemp === undefined) delete process.env.RUNNER_TEMP;
      else process.env.RUNNER_TEMP = runnerTemp;
    }
  }

  test('a cut while reading it reconnects and reads it again: the record goes beside the live image', async () => {
    const dirs = scenario('record-cut', right);
    const { buildKey } = stageRecord(dirs);
    const first = proxy.sent.length;
    // The record is ~200 kB: 50 kB from the server falls inside its reading, after the handshake.
    proxy.planFaults([{ dir: 'down', at: 50_000, kind: 'cut' }]);
    const { reporter, error } = await publishJob(dirs);
    expect(error).toBeUndefined();
    expect(reporter.lines).toContainEqual(expect.stringMatching(/^warning: connection lost while reading the staged provenance record .*; reconnecting \(1\/5\)$/));
    // The cut connection, then one for everything else.
    expect(proxy.sent.length - first).toBe(2);
    expect(sha256File(`${dirs.live}/tool-2.0.sif`)).toBe(right.sha);
    const placed = JSON.parse(readFileSync(`${dirs.live}/tool-2.0.provenance.json`, 'utf8')) as { buildKey: string; remotePath: string };
    expect([placed.buildKey, placed.remotePath]).toEqual([buildKey, `${dirs.live}/tool-2.0.sif`]);
    expect(readdirSync(dirs.staging)).toEqual([]);
  }, 60_000);

  test('a link that keeps dropping while reading it fails the publish: nothing goes live without the evidence', async () => {
    const dirs = scenario('record-down', right);
    stageRecord(dirs);
    // One cut for the first connection and for each of the five reconnections.
    proxy.planFaults(Array.from({ length: 6 }, () => ({ dir: 'down' as const, at: 50_000, kind: 'cut' as const })));
    const { error } = await publishJob(dirs);
    proxy.planFaults([]);
    expect(error?.message).toMatch(new RegExp(`^reading the staged provenance record ${dirs.staging}/tool-2.0.provenance.json failed: .*(closed|lost|reset)`, 'i'));
    expect(existsSync(`${dirs.live}/tool-2.0.sif`)).toBe(false);
    expect(existsSync(`${dirs.live}/tool.sif`)).toBe(false);
    expect(readdirSync(dirs.staging).sort()).toEqual(['tool-2.0.provenance.json', 'tool-2.0.sif']);
    expect(leftovers(dirs.live)).toEqual([]);
  }, 60_000);
});

describe('bad values', () => {
  test.each([
    ['--remote-name', 'x\ny.sif', /^error: --remote-name: must be a plain file name without newlines or control characters/],
    ['--remote-name', '../up.sif', /^error: --remote-name: must be a plain file name, without "\/"/],
    ['--remote-name', '..', /^error: --remote-name: must be a plain file name not starting with "."/],
    ['--alias', 'tool-2.0.sif', /^error: --alias: must differ from remote-name/],
    ['--github-api-url', 'not a url', /^error: --github-api-url: must be an http or https URL/],
  ])('%s %j exits 1 with one message naming it and leaves nothing on the server', (flag, value, message) => {
    const dirs = scenario(`bad-${flag}-${value.replace(/\W/g, '_')}`, right);
    const before = { live: readdirSync(dirs.live).sort(), staging: readdirSync(dirs.staging).sort() };
    const extra = flag === '--github-api-url' ? ['--docs-repo', 'o/r', '--docs-file', 'x.rst', '--software', 'Tool', '--github-token', 'ghp_x', flag, value] : [flag, value];
    const args = cliArgs(dirs, sshd.port).filter((a, i, all) => !(flag === '--alias' && (a === '--alias' || all[i - 1] === '--alias')));
    const run = spawnSync(process.execPath, [...args, ...extra], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect({ live: readdirSync(dirs.live).sort(), staging: readdirSync(dirs.staging).sort() }).toEqual(before);
  });

  test('--name a/b blames --name alone', () => {
    const run = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'publish', '--name', 'a/b', '--sftp-host', 'h', '--sftp-username', 'u', '--sftp-private-key-file', keyFile, '--sftp-host-fingerprint', sshd.fingerprint, '--remote-dir', '/x'], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: --name: must be letters, digits/)]);
  });

  test.each([
    ['--time-limit', '15 minutes', /^error: --time-limit: must be a Slurm time/],
    ['--mem', '64 GB', /^error: --mem: must be a Slurm memory size/],
    ['--partition', 'dgx2\ntouch /tmp/x', /^error: --partition: must be a Slurm partition name/],
    ['--slurm-args', '--comment "unterminated', /^error: --slurm-args: has an unterminated double quote/],
  ])('smoke %s %j is refused at configuration time', (flag, value, message) => {
    const run = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'smoke', '--image', right.path, `${flag}=${value}`], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
  });

  test('inspect of a directory is a one-line error', () => {
    const run = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'inspect', local.dir], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(`error: FILE: ${local.dir} is not a file (a SIF image is expected)`);
  });
});
