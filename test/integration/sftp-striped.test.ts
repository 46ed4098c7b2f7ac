// Striped uploads: the image written over several SFTP channels of one connection (or several connections where
// sshd allows one session each), cut at several points and resumed from the ranges the server confirmed.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SftpTarget } from '../../src/publish/connect.js';
import { stageImage, stageSummary } from '../../src/publish/stage.js';
import type { Reporter } from '../../src/report/reporter.js';
import { renderText } from '../../src/report/summary.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { startCutProxy, type CutProxy, type Fault } from '../helpers/cut-proxy.js';
import { randomFile, sha256File } from '../helpers/files.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
let sshd: Sshd;
let single: Sshd;
let proxy: CutProxy;
let local: { dir: string; cleanup: () => void };
let image: string;
let imageSha: string;

beforeAll(async () => {
  [sshd, single] = await Promise.all([startSshd(), startSshd({ maxSessions: 1 })]);
  proxy = await startCutProxy(sshd.port);
  local = tempDir('bi-striped-');
  image = path.join(local.dir, 'striped-1.0.sif');
  imageSha = randomFile(image, 12 * MiB);
}, 30_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([sshd?.stop(), single?.stop()]);
  local?.cleanup();
});

function target(server: Sshd, port = server.port): SftpTarget {
  return { host: server.host, port, username: server.user, privateKey: server.privateKey, fingerprint: server.fingerprint };
}

/** The commands sshd has started (exec channels), from its log. */
function commandsRun(server: Sshd): number {
  return server.log().match(/Starting session: command/g)?.length ?? 0;
}

function userDir(server: Sshd, name: string): string {
  const dir = path.join(server.root, name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, server.uid, server.gid);
  return dir;
}

describe('a striped upload', () => {
  test('writes disjoint ranges over four channels of one connection and ends identical, verified, alone', async () => {
    const staging = userDir(sshd, 'four/staging');
    const reporter = new CaptureReporter();
    const commandsBefore = commandsRun(sshd);
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'striped-1.0.sif', reporter, channels: 4, progressIntervalMs: 0, verifySegmentBytes: 2 * MiB, segmentMaxRate: Infinity });
    expect(staged).toMatchObject({ sha256: imageSha, bytesSent: 12 * MiB, verification: 'sha256', channels: 4 });
    expect(sha256File(`${staging}/striped-1.0.sif`)).toBe(imageSha);
    expect(readdirSync(staging)).toEqual(['striped-1.0.sif']);
    expect(reporter.text()).toContain('writing over 4 SFTP channel(s) (sftp-channels: 4)');
    // Five segments of 2 MiB, then the last 2 MiB in quarters (at least a 1 MiB block each), so that what is left to
    // hash once the upload ends is short.
    expect(reporter.text()).toContain('of 7 segments, computed while uploading, matches the image');
    // The seven segments were asked of two hashing processes kept open for the upload, not of seven commands.
    expect(commandsRun(sshd) - commandsBefore).toBe(2);
    expect(renderText(stageSummary(staged))).toMatch(/Link +round trip [\d.]+ ms, 4 SFTP channel\(s\), [\d.]+ MiB\/s effective/);
  }, 60_000);

  test('twelve channels (two over a second connection, sshd allows 10 sessions): staged whole, and Node warns of no listener leak', () => {
    // Run as a user runs it: the CLI, whose standard error would carry Node's MaxListenersExceededWarning.
    const staging = userDir(sshd, 'twelve/staging');
    const keyFile = path.join(local.dir, 'twelve-key');
    writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
    const run = spawnSync(
      process.execPath,
      [
        path.resolve('dist/cli.js'), 'stage', '--image', image, '--sftp-host', sshd.host, '--sftp-port', String(sshd.port), '--sftp-username', sshd.user,
        '--sftp-private-key-file', keyFile, '--sftp-known-hosts', sshd.knownHostsLine, '--staging-dir', staging, '--remote-dir', userDir(sshd, 'twelve/live'), '--remote-name', 'twelve.sif', '--sftp-channels', '12',
      ],
      { encoding: 'utf8' },
    );
    expect(run.stderr + run.stdout).toContain('writing over 12 SFTP channel(s) (sftp-channels: 12)');
    expect(run.status).toBe(0);
    expect(run.stderr).not.toMatch(/Warning/);
    expect(sha256File(`${staging}/twelve.sif`)).toBe(imageSha);
    expect(readdirSync(staging)).toEqual(['twelve.sif']);
  }, 60_000);

  test('auto stays on one channel on loopback', async () => {
    const staging = userDir(sshd, 'auto/staging');
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'a.sif', reporter, progressIntervalMs: 0 });
    expect(staged.channels).toBe(1);
    expect(reporter.text()).toMatch(/writing over 1 SFTP channel\(s\) \(round trip [\d.]+ ms to 127\.0\.0\.1 on this machine: one channel\)/);
    expect(readdirSync(staging)).toEqual(['a.sif']);
  }, 60_000);

  test('where sshd allows one session per connection (MaxSessions 1), further connections carry the stripes and the server hash, and the log says so', async () => {
    const staging = userDir(single, 'single/staging');
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(single), image, stagingDir: staging, remoteName: 'one.sif', reporter, channels: 3, progressIntervalMs: 0 });
    expect(sha256File(`${staging}/one.sif`)).toBe(imageSha);
    // The server's hash runs too: its exec channel goes over a connection of its own.
    expect(staged).toMatchObject({ channels: 3, verification: 'sha256' });
    expect(reporter.text()).toMatch(/the server allows 1 SFTP session\(s\) per connection \(.*sshd's MaxSessions\): writing over 3 connections, 3 channels in all/);
    expect(readdirSync(staging)).toEqual(['one.sif']);
  }, 60_000);

  test('cut at several points, every channel resumes its ranges and the file ends identical, verified, with nothing else left', async () => {
    const outcomes: string[] = [];
    // Client-to-server bytes of a connection: early, middle and late in the upload, and a cut of the reconnection too.
    const plans = [[0.2], [0.5], [0.85], [0.3, 0.3]].map((p) => p.map((f) => Math.floor(f * 12 * MiB)));
    for (const [i, cuts] of plans.entries()) {
      const staging = userDir(sshd, `cut/${i}`);
      proxy.plan(cuts);
      const reporter = new CaptureReporter();
      const staged = await stageImage({
        target: target(sshd, proxy.port),
        image,
        stagingDir: staging,
        remoteName: 'striped-1.0.sif',
        reporter,
        channels: 3,
        // Fewer bytes in flight than the defaults, so that much is acknowledged (and recorded) before each cut.
        requests: 8,
        chunkSize: 32 * 1024,
        connect: { retryDelayMs: 20, retries: 3 },
        progressIntervalMs: 0,
        verifySegmentBytes: 2 * MiB,
        segmentMaxRate: Infinity,
      });
      expect(staged).toMatchObject({ sha256: imageSha, verification: 'sha256' });
      expect(sha256File(`${staging}/striped-1.0.sif`)).toBe(imageSha);
      expect(readdirSync(staging)).toEqual(['striped-1.0.sif']);
      // Resumed from ranges (not from the start), and sent less than twice the image in all.
      expect(staged.resumedFrom.length).toBe(cuts.length);
      expect(staged.resumedFrom.every((b) => b > 0)).toBe(true);
      expect(staged.bytesSent).toBeLessThan(12 * MiB * 1.5);
      outcomes.push(reporter.text().match(/resuming \S+ (with|from) [^\n]*/)?.[0] ?? 'no resume');
    }
    // The stripes left holes: at least one resume found several ranges, not a prefix.
    expect(outcomes.some((o) => / in \d+ ranges/.test(o))).toBe(true);
  }, 120_000);

  test('cut or stalled in either direction while its channels open, the lock is taken and the copies compared: staged whole, verified, nothing else left', async () => {
    // Three 4 MiB pieces at most: one for each channel.
    const small = path.join(local.dir, 'early.sif');
    const smallSha = randomFile(small, 9 * MiB);
    const options = (staging: string, reporter: Reporter) => ({
      target: target(sshd, proxy.port),
      image: small,
      stagingDir: staging,
      remoteName: 'early.sif',
      reporter,
      // Opened with the connection: the cuts land among the sessions' openings as well as the lock's requests.
      channels: 3,
      progressIntervalMs: 0,
      // A stalled link is noticed after three unanswered keepalives (0.6 s), a stalled handshake after 2 s.
      connect: { retryDelayMs: 10, retries: 3, keepaliveIntervalMs: 200, readyTimeoutMs: 2000 },
    });
    // Where the upload begins in each direction, from a clean run: the sweep covers everything before it.
    const first = proxy.sent.length;
    proxy.planFaults([]);
    const clean = new CaptureReporter();
    let before = { up: 0, down: 0 };
    clean.info = (message: string) => {
      if (message.startsWith('writing over')) before = { up: proxy.sent[first], down: proxy.received[first] };
      CaptureReporter.prototype.info.call(clean, message);
    };
    await stageImage(options(userDir(sshd, 'early/clean'), clean));
    expect(before.up).toBeGreaterThan(2000);
    const faults: Fault[] = [];
    for (const dir of ['up', 'down'] as const) {
      for (let at = 150; at < before[dir]; at += 400) faults.push({ dir, at });
      for (const share of [0.6, 0.9]) faults.push({ dir, at: Math.floor(before[dir] * share), kind: 'stall' });
    }
    for (const [i, fault] of faults.entries()) {
      const staging = userDir(sshd, `early/${i}`);
      proxy.planFaults([fault]);
      const t0 = Date.now();
      const rep = new CaptureReporter();
      rep.info = (m: string) => process.stdout.write(`  ${Date.now() - t0} ${m.slice(0, 100)}\n`);
      rep.warning = (m: string) => process.stdout.write(`  ${Date.now() - t0} W ${m.slice(0, 100)}\n`);
      const staged = await stageImage({ ...options(staging, rep), onPhase: (p: string, sec: number) => process.stdout.write(`  P ${p} ${sec.toFixed(3)}\n`) });
      process.stdout.write(`T ${fault.kind ?? 'cut'} ${fault.dir} ${fault.at} ${Date.now() - t0}\n`);
      const what = `${fault.kind ?? 'cut'} ${fault.dir} at ${fault.at}`;
      expect([what, staged.sha256, staged.verification, staged.channels, readdirSync(staging)]).toEqual([what, smallSha, 'sha256', 3, ['early.sif']]);
      expect(sha256File(`${staging}/early.sif`)).toBe(smallSha);
    }
    process.stdout.write(`early faults: ${faults.length} over the first ${before.up} B up / ${before.down} B down, all staged\n`);
  }, 240_000);
});

describe('an account chrooted to the cluster-like tree (ChrootDirectory; the server has only busybox)', () => {
  test('the upload lands at /lustre/share/img as the account sees it, and its segments are verified by busybox sha256sum', async () => {
    const chrooted = await startSshd({ chroot: true });
    try {
      const reporter = new CaptureReporter();
      const staged = await stageImage({ target: target(chrooted), image, stagingDir: '/lustre/share/img/.staging', remoteName: 'c.sif', reporter, channels: 2, progressIntervalMs: 0, verifySegmentBytes: 2 * MiB, segmentMaxRate: Infinity });
      expect(staged).toMatchObject({ sha256: imageSha, verification: 'sha256', stagedPath: '/lustre/share/img/.staging/c.sif' });
      expect(sha256File(path.join(chrooted.root, 'lustre/share/img/.staging/c.sif'))).toBe(imageSha);
      expect(reporter.text()).not.toContain('inconclusive');
      expect(reporter.text()).toContain('of 7 segments, computed while uploading, matches the image');
    } finally {
      await chrooted.stop();
    }
  }, 60_000);
});
