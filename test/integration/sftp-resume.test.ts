// Fault injection: the connection to sshd is cut at many points of the SSH stream (handshake, authentication, early,
// middle and late in the upload, during verification). Every run must end with an identical file (after resuming
// from what the server holds) or a clean failure, and the live path must never show a partial file.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SftpError, type SftpTarget } from '../../src/publish/connect.js';
import { promoteImage } from '../../src/publish/promote.js';
import { stageImage } from '../../src/publish/stage.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js';
import { randomFile, sha256File } from '../helpers/files.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
let sshd: Sshd;
let proxy: CutProxy;
let local: { dir: string; cleanup: () => void };
const files: { path: string; size: number; sha: string }[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  proxy = await startCutProxy(sshd.port);
  local = tempDir('bi-resume-');
  for (const size of [8 * MiB, 20 * MiB, 40 * MiB]) {
    const file = path.join(local.dir, `img-${size}.sif`);
    files.push({ path: file, size, sha: randomFile(file, size) });
  }
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await sshd?.stop();
  local?.cleanup();
});

function userDir(name: string): string {
  const dir = path.join(sshd.root, name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, sshd.uid, sshd.gid);
  return dir;
}

function target(port: number): SftpTarget {
  // The proxy listens on another port than sshd, so the pin is for sshd's key on the proxy's port.
  return { host: sshd.host, port, username: sshd.user, privateKey: sshd.privateKey, fingerprint: sshd.fingerprint };
}

/**
 * Samples the live path from a separate process (so sampling does not slow the upload's event loop) until stopped;
 * reports every content it saw that is not one of the complete images.
 */
function watch(file: string, complete: Set<string>): { stop: () => Promise<{ samples: number; bad: string[] }> } {
  const script = `
    const fs = require('node:fs'), crypto = require('node:crypto');
    const [file, ...good] = process.argv.slice(1);
    let samples = 0, running = true; const bad = [];
    process.stdin.on('data', () => { running = false; });
    (async () => {
      while (running) {
        let data;
        try { data = fs.readFileSync(file); } catch {}
        if (data) {
          samples++;
          const sha = crypto.createHash('sha256').update(data).digest('hex');
          if (!good.includes(sha)) bad.push(data.length + ' bytes, sha256 ' + sha);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      process.stdout.write(JSON.stringify({ samples, bad }), () => process.exit(0));
    })();`;
  const child = spawn(process.execPath, ['-e', script, file, ...complete], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve(JSON.parse(out) as { samples: number; bad: string[] }));
        child.stdin!.write('stop\n');
      }),
  };
}

describe('a dropped connection during staging', () => {
  test('every cut point ends in an identical live file or a clean failure; the live path never shows a partial file', async () => {
    const staging = userDir('fault/staging');
    const live = userDir('fault/live');
    const livePath = `${live}/fault-1.0.sif`;
    const watcher = watch(livePath, new Set(files.map((f) => f.sha)));
    // Cut points as bytes the client has sent on a connection: during the handshake, during authentication, and at
    // fractions of the image (beyond 1: during verification and rename). Two entries: the reconnection is cut too.
    const plans: ((size: number) => number[])[] = [
      () => [700],
      () => [3000],
      (s) => [s * 0.03],
      (s) => [s * 0.25],
      (s) => [s * 0.5],
      (s) => [s * 0.8],
      (s) => [s * 0.97],
      (s) => [Math.floor(s * 1.001)],
      (s) => [s * 0.3, s * 0.4],
    ];
    const outcomes: string[] = [];
    let resumedRuns = 0;
    let seen: { samples: number; bad: string[] } | undefined;
    try {
      for (const file of files) {
        for (const plan of plans) {
          const cuts = plan(file.size).map(Math.floor);
          proxy.plan(cuts);
          const firstConnection = proxy.sent.length;
          const reporter = new CaptureReporter();
          try {
            const staged = await stageImage({
              target: target(proxy.port),
              image: file.path,
              stagingDir: staging,
              remoteName: 'fault-1.0.sif',
              reporter,
              connect: { retryDelayMs: 20, retries: 3 },
              progressIntervalMs: 0,
              // Small segments, so the server-side hashing during the upload is cut and resumed too.
              verifySegmentBytes: 4 * MiB,
              segmentMaxRate: Infinity,
            });
            expect(staged.sha256).toBe(file.sha);
            expect(staged.verification).toBe('sha256');
            await promoteImage({ target: target(sshd.port), stagedPath: staged.stagedPath, remoteDir: live, remoteName: 'fault-1.0.sif', keep: 1, lockTimeoutMs: 30_000, protectedPaths: [], reporter });
            expect(sha256File(livePath)).toBe(file.sha);
            if (staged.resumedFrom.length > 0) {
              resumedRuns++;
              // What the last connection carried: the rest of the file, not the whole file again.
              const last = proxy.sent[proxy.sent.length - 1];
              expect(last).toBeLessThan(file.size);
              expect(staged.resumedFrom[staged.resumedFrom.length - 1]).toBeGreaterThan(0);
            }
            outcomes.push(`${file.size / MiB} MiB cut at ${cuts.join('+')}: ok, ${proxy.sent.length - firstConnection} connection(s), resumed from ${staged.resumedFrom.join(',') || '-'}`);
          } catch (error) {
            // A clean failure: our own error type with a message, and nothing half-written at the live path.
            expect(error).toBeInstanceOf(SftpError);
            expect((error as Error).message).toMatch(/failed|cannot connect/);
            outcomes.push(`${file.size / MiB} MiB cut at ${cuts.join('+')}: failed cleanly: ${(error as Error).message}`);
          }
        }
      }
    } finally {
      seen = await watcher.stop();
    }
    expect(seen.bad).toEqual([]);
    expect(seen.samples).toBeGreaterThan(0);
    expect(outcomes).toHaveLength(plans.length * files.length);
    // With reconnects allowed, every one of these cuts is survived.
    expect(outcomes.filter((o) => !o.includes(': ok'))).toEqual([]);
    expect(resumedRuns).toBeGreaterThanOrEqual(15);
    expect(readdirSync(staging)).toEqual([]);
    expect(readdirSync(live).sort()).toEqual(['.build-image.json', 'fault-1.0.sif']);
  }, 150_000);

  test('a connection dropped while preparing (directory, lock, comparison with the server) is survived too', async () => {
    const file = files[0];
    // Every 100 bytes from the end of authentication to the first writes: the steps between connecting and sending.
    const outcomes: string[] = [];
    for (let cut = 1500; cut <= 3500; cut += 100) {
      const staging = userDir(`prepare/${cut}`);
      proxy.plan([cut]);
      const reporter = new CaptureReporter();
      const staged = await stageImage({ target: target(proxy.port), image: file.path, stagingDir: staging, remoteName: 'p.sif', reporter, connect: { retryDelayMs: 20, retries: 3 }, progressIntervalMs: 0 });
      expect(sha256File(staged.stagedPath)).toBe(file.sha);
      // No lock, lock draft or partial left behind.
      expect(readdirSync(staging)).toEqual(['p.sif']);
      outcomes.push(reporter.text().match(/connection lost \((.*)\); reconnecting/)?.[1] ?? 'no reconnect');
    }
    // Some cuts fell while the staging directory was checked, which used to fail the run.
    expect(outcomes.filter((o) => o.startsWith('checking the directory')).length).toBeGreaterThan(0);
  }, 120_000);

  test('a connection dropped while promoting is survived: the image, the alias and retention end as if uncut', async () => {
    const file = files[0];
    const outcomes: string[] = [];
    // From the end of authentication through the locks, the rename, the alias swap and retention.
    for (let cut = 1500; cut <= 4500; cut += 150) {
      const staging = userDir(`promote/${cut}/staging`);
      const live = userDir(`promote/${cut}/live`);
      // An older version this tool published, to fall to retention, and the staged new one.
      writeFileSync(`${live}/tool-1.0.sif`, 'old');
      chownSync(`${live}/tool-1.0.sif`, sshd.uid, sshd.gid);
      writeFileSync(`${live}/.build-image.json`, JSON.stringify({ tool: 'build-image', images: { 'tool-1.0.sif': { family: 'tool', size: 3, published: '2026-01-01T00:00:00Z' } } }));
      chownSync(`${live}/.build-image.json`, sshd.uid, sshd.gid);
      const staged = await stageImage({ target: target(sshd.port), image: file.path, stagingDir: staging, remoteName: 'tool-2.0.sif', reporter: new CaptureReporter() });
      proxy.plan([cut]);
      const reporter = new CaptureReporter();
      const promoted = await promoteImage({
        target: target(proxy.port),
        stagedPath: staged.stagedPath,
        stagedSha256: staged.sha256,
        remoteDir: live,
        remoteName: 'tool-2.0.sif',
        alias: 'tool.sif',
        keep: 1,
        lockTimeoutMs: 30_000,
        protectedPaths: [],
        reporter,
        connect: { retryDelayMs: 20, retries: 3 },
      });
      expect(promoted).toMatchObject({ remotePath: `${live}/tool-2.0.sif`, deleted: [`${live}/tool-1.0.sif`] });
      expect(sha256File(`${live}/tool-2.0.sif`)).toBe(file.sha);
      expect(readFileSync(`${live}/tool.sif`).equals(readFileSync(file.path))).toBe(true);
      // No lock, lock draft, alias draft, manifest draft or staged file left anywhere.
      expect(readdirSync(live).sort()).toEqual(['.build-image.json', 'tool-2.0.sif', 'tool.sif']);
      expect(Object.keys(JSON.parse(readFileSync(`${live}/.build-image.json`, 'utf8')).images)).toEqual(['tool-2.0.sif']);
      expect(readdirSync(staging)).toEqual([]);
      outcomes.push(reporter.text().match(/connection lost while promoting \((.*)\); reconnecting/)?.[1] ?? 'no reconnect');
    }
    // Most cuts fell inside the promotion itself, not only during connecting.
    expect(outcomes.filter((o) => o !== 'no reconnect').length).toBeGreaterThan(5);
  }, 180_000);

  test('when the link keeps dropping, the run fails cleanly and the live file is untouched', async () => {
    const staging = userDir('flaky/staging');
    const live = userDir('flaky/live');
    writeFileSync(`${live}/fault-1.0.sif`, 'the published image');
    const file = files[1];
    proxy.plan([file.size * 0.2, file.size * 0.1, file.size * 0.1].map(Math.floor));
    const reporter = new CaptureReporter();
    await expect(
      stageImage({ target: target(proxy.port), image: file.path, stagingDir: staging, remoteName: 'fault-1.0.sif', reporter, liveDir: live, maxResumes: 2, connect: { retryDelayMs: 20 } }),
    ).rejects.toThrow(/^uploading .* failed: /);
    expect(readFileSync(`${live}/fault-1.0.sif`, 'utf8')).toBe('the published image');
    // The partial stays for a later run to resume; the staging lock was released.
    expect(readdirSync(staging)).toEqual(['.fault-1.0.sif.partial']);
    const next = await stageImage({ target: target(sshd.port), image: file.path, stagingDir: staging, remoteName: 'fault-1.0.sif', reporter });
    expect(next.resumedFrom).toHaveLength(1);
    expect(next.bytesSent).toBe(file.size - next.resumedFrom[0]);
    expect(sha256File(next.stagedPath)).toBe(file.sha);
  }, 60_000);

  test("a partial left by a different image of the same name is not continued", async () => {
    const staging = userDir('mixed/staging');
    const [small, big] = [files[0], files[1]];
    // The first 4 MiB of another image sit in the partial.
    const partial = `${staging}/.fault-1.0.sif.partial`;
    writeFileSync(partial, readFileSync(small.path).subarray(0, 4 * MiB));
    chownSync(partial, sshd.uid, sshd.gid);
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd.port), image: big.path, stagingDir: staging, remoteName: 'fault-1.0.sif', reporter });
    expect(staged.resumedFrom).toEqual([]);
    expect(staged.bytesSent).toBe(big.size);
    expect(sha256File(staged.stagedPath)).toBe(big.sha);
  }, 60_000);
});
