// Stage and promote against a real OpenSSH sshd on loopback, logged in as an ordinary (non-root) account.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promoteImage, promoteSummary } from '../../src/publish/promote.js';
import { stageImage, stageSummary } from '../../src/publish/stage.js';
import { renderText } from '../../src/report/summary.js';
import type { SftpTarget } from '../../src/publish/connect.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { randomFile, sha256File } from '../helpers/files.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
let sshd: Sshd;
let sftpOnly: Sshd;
let local: { dir: string; cleanup: () => void };
let image: string;
let imageSha: string;

beforeAll(async () => {
  [sshd, sftpOnly] = await Promise.all([startSshd(), startSshd({ sftpOnly: true })]);
  local = tempDir('bi-publish-');
  image = path.join(local.dir, 'pytorch-24.11.sif');
  imageSha = randomFile(image, 24 * MiB);
}, 30_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), sftpOnly?.stop()]);
  local?.cleanup();
});

function target(server: Sshd, extra: Partial<SftpTarget> = {}): SftpTarget {
  return { host: server.host, port: server.port, username: server.user, privateKey: server.privateKey, knownHosts: server.knownHostsLine, ...extra };
}

/** A directory on the server owned by the sftp account. */
/** `dir` holding links to only these of this machine's programs: an account's PATH without the others. */
function pathOf(dir: string, tools: string[]): string {
  for (const tool of tools) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), `${dir}/${tool}`);
  return dir;
}

function userDir(server: Sshd, name: string): string {
  const dir = path.join(server.root, name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, server.uid, server.gid);
  return dir;
}

function expectNoSecrets(text: string, server: Sshd): void {
  for (const line of server.privateKey.split('\n').filter((l) => l.length > 20)) expect(text).not.toContain(line);
  for (const line of server.encryptedKey.split('\n').filter((l) => l.length > 20)) expect(text).not.toContain(line);
  expect(text).not.toContain(server.passphrase);
}

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('stage then promote', () => {
  test('the live file is byte-identical, staging is empty, the lock is gone, and the log shows throughput and verification', async () => {
    const staging = userDir(sshd, 'a/staging');
    const live = userDir(sshd, 'a/live');
    const reporter = new CaptureReporter();
    const t = target(sshd, { privateKey: sshd.encryptedKey, passphrase: sshd.passphrase });
    const staged = await stageImage({ target: t, image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, liveDir: live, verifySegmentBytes: 4 * MiB, segmentMaxRate: Infinity, progressIntervalMs: 20 });
    expect(staged).toMatchObject({ sha256: imageSha, bytesSent: 24 * MiB, uploadSkipped: false, verification: 'sha256', hashTool: 'python3', stagedPath: `${staging}/pytorch-24.11.sif` });
    expect(readdirSync(staging)).toEqual(['pytorch-24.11.sif']);

    const promoted = await promoteImage({ target: t, stagedPath: staged.stagedPath, remoteDir: live, remoteName: 'pytorch-24.11.sif', alias: 'pytorch-latest.sif', keep: 3, lockTimeoutMs: 60_000, protectedPaths: [], reporter });
    expect(promoted.remotePath).toBe(`${live}/pytorch-24.11.sif`);
    expect(sha256File(promoted.remotePath)).toBe(imageSha);
    expect(readdirSync(staging)).toEqual([]);
    expect(readdirSync(live).sort()).toEqual(['.build-image.json', 'pytorch-24.11.sif', 'pytorch-latest.sif']);
    // The manifest records what this tool published, for retention to trust later.
    expect(JSON.parse(readFileSync(`${live}/.build-image.json`, 'utf8')).images['pytorch-24.11.sif']).toMatchObject({ family: 'pytorch', size: 24 * MiB });
    expect(readlinkSync(`${live}/pytorch-latest.sif`)).toBe('pytorch-24.11.sif');
    const log = reporter.text();
    expect(log).toMatch(/staged .* sent in [\d.]+ s \([\d.]+ MiB\/s\).*verified by remote sha256 \(python3\)/);
    expect(log).toMatch(/trusted by known-hosts/);
    expect(log).toMatch(/uploaded [\d.]+ (KiB|MiB) \(\d+ bytes\) of 24\.0 MiB \(25165824 bytes\) \([\d.]+%\), [\d.]+ MiB\/s, ETA /);
    // The server hashed the image in segments while it arrived (five of 4 MiB, then the last 4 MiB in four), so no
    // second pass over the whole file was needed.
    expect(log).toContain('remote sha256 (python3) of 9 segments, computed while uploading, matches the image');
    expectNoSecrets(log, sshd);
    const summary = renderText(stageSummary(staged));
    expect(summary).toMatch(/Sent +24\.0 MiB \(25165824 bytes\) in [\d.]+ s \([\d.]+ MiB\/s\)/);
    expect(summary).toMatch(/Verified by +remote sha256 \(python3\)/);

    // Publishing the same image again sends nothing: the live copy already has its sha256.
    const again = new CaptureReporter();
    const skipped = await stageImage({ target: t, image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter: again, liveDir: live });
    expect(skipped).toMatchObject({ uploadSkipped: true, bytesSent: 0, stagedPath: `${live}/pytorch-24.11.sif`, sha256: imageSha });
    expect(again.text()).toContain('nothing sent');
    await promoteImage({ target: t, stagedPath: skipped.stagedPath, remoteDir: live, remoteName: 'pytorch-24.11.sif', keep: 3, lockTimeoutMs: 60_000, protectedPaths: [], reporter: again });
    expect(sha256File(`${live}/pytorch-24.11.sif`)).toBe(imageSha);
  }, 60_000);

  test('a server without openssl hashes with sha256sum and says so', async () => {
    // The account's PATH holds only what the fallback needs: sh, dd and coreutils' sha256sum.
    const plain = await startSshd({ path: pathOf(userDir(sshd, 'no-openssl-bin'), ['sh', 'dd', 'sha256sum']) });
    try {
      const staging = userDir(plain, 'staging');
      const reporter = new CaptureReporter();
      const staged = await stageImage({ target: target(plain), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, verifySegmentBytes: 8 * MiB, segmentMaxRate: Infinity });
      expect(staged).toMatchObject({ verification: 'sha256', hashTool: 'sha256sum', sha256: imageSha });
      expect(reporter.text()).toContain('remote sha256 (sha256sum) of 6 segments, computed while uploading, matches the image');
      expect(sha256File(staged.stagedPath)).toBe(imageSha);
    } finally {
      await plain.stop();
    }
  }, 60_000);

  test('an upload faster than piped segment hashing pays off stops it and hashes the whole file once; Python goes on', async () => {
    // The account's PATH without python3: the segments are hashed through `dd | openssl dgst`.
    const piped = await startSshd({ path: pathOf(userDir(sshd, 'no-python-bin'), ['sh', 'dd', 'openssl']) });
    try {
      const staging = userDir(piped, 'fast/staging');
      const reporter = new CaptureReporter();
      // Any rate is "fast" against one byte per second: the first segment is hashed, then hashing in segments stops.
      const staged = await stageImage({ target: target(piped), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, verifySegmentBytes: 4 * MiB, segmentMaxRate: 1 });
      expect(staged).toMatchObject({ verification: 'sha256', hashTool: 'openssl', sha256: imageSha });
      expect(reporter.text()).toMatch(/segment hashing stopped \(the upload runs at \d+ MiB\/s, faster than segment hashing pays off\); hashing the whole file on the server once/);
      expect(reporter.text()).not.toContain('segments, computed while uploading');
      expect(sha256File(staged.stagedPath)).toBe(imageSha);
    } finally {
      await piped.stop();
    }
    // With Python the server reads the segments itself, for less than a pass afterwards: no rate stops it.
    const staging = userDir(sshd, 'fast/staging');
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, verifySegmentBytes: 4 * MiB, segmentMaxRate: 1 });
    expect(staged).toMatchObject({ verification: 'sha256', hashTool: 'python3', sha256: imageSha });
    expect(reporter.text()).toMatch(/remote sha256 \(python3\) of \d+ segments, computed while uploading, matches the image/);
    expect(reporter.text()).not.toContain('segment hashing stopped');
    expect(sha256File(staged.stagedPath)).toBe(imageSha);
  }, 90_000);

  test('an account without exec fails closed by default, and verifies by size only with verify: size', async () => {
    const staging = userDir(sftpOnly, 'staging');
    const refused = await errorOf(stageImage({ target: target(sftpOnly), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter: new CaptureReporter() }));
    expect(refused.message).toBe(
      `cannot check ${staging}/.pytorch-24.11.sif.partial on the server: hashing exited with 1: This service allows sftp connections only.. ` +
        'A server-side sha256 is required before anything goes live; if this account can only use SFTP, set verify: size to accept a size check instead',
    );
    expect(readdirSync(staging).filter((n) => !n.startsWith('.'))).toEqual([]);
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sftpOnly), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, verify: 'size' });
    expect(staged.verification).toBe('size');
    expect(sha256File(staged.stagedPath)).toBe(imageSha);
    expect(reporter.text()).toContain('remote hashing is not available (hashing exited with 1: This service allows sftp connections only.); verified by size only (25165824 bytes), as verify: size allows');
    expect(reporter.text()).toMatch(/staged .*; verified by size only$/m);
  }, 60_000);

  test('a missing staging dir is created; one that cannot be created is a clear error', async () => {
    const base = userDir(sshd, 'b');
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: `${base}/new/deeper/staging`, remoteName: 'x-1.sif', reporter });
    expect(sha256File(staged.stagedPath)).toBe(imageSha);

    const rootOwned = path.join(sshd.root, 'root-owned');
    mkdirSync(rootOwned, { recursive: true });
    const error = await errorOf(stageImage({ target: target(sshd), image, stagingDir: `${rootOwned}/staging`, remoteName: 'x-1.sif', reporter }));
    expect(error.message).toBe(`creating the directory ${rootOwned}/staging (it did not exist) failed: permission denied`);
    expect(existsSync(`${rootOwned}/staging`)).toBe(false);
  }, 60_000);

  test('permission denied on the remote dir fails clearly and leaves the live file untouched', async () => {
    const staging = userDir(sshd, 'c/staging');
    // The live dir belongs to root (mode 755): the sftp account may read but not write it.
    const live = path.join(sshd.root, 'c/live');
    mkdirSync(live, { recursive: true });
    writeFileSync(`${live}/pytorch-24.10.sif`, 'old image');
    chmodSync(live, 0o755);
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'pytorch-24.10.sif', reporter });
    const error = await errorOf(promoteImage({ target: target(sshd), stagedPath: staged.stagedPath, remoteDir: live, remoteName: 'pytorch-24.10.sif', keep: 2, lockTimeoutMs: 10_000, protectedPaths: [], reporter }));
    expect(error.message).toBe(`creating the lock file ${live}/.pytorch-24.10.sif.lock failed: permission denied`);
    expect(readFileSync(`${live}/pytorch-24.10.sif`, 'utf8')).toBe('old image');
    expect(existsSync(staged.stagedPath)).toBe(true);
  }, 60_000);

  test('a full disk on the server fails the upload clearly and leaves the live file untouched', async () => {
    // A real ENOSPC: a 4 MiB tmpfs as the staging dir, for a 24 MiB image.
    const staging = path.join(sshd.root, 'tiny');
    mkdirSync(staging);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=4m,uid=${sshd.uid},gid=${sshd.gid},mode=0755`, 'tmpfs', staging]);
    try {
      const live = userDir(sshd, 'd/live');
      writeFileSync(`${live}/pytorch-24.11.sif`, 'current image');
      const reporter = new CaptureReporter();
      const error = await errorOf(stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter, liveDir: live }));
      expect(error.message).toMatch(/^writing .*\/tiny\/\.pytorch-24.11.sif.partial failed: the server reported a failure without detail \(often a full disk/);
      expect(readFileSync(`${live}/pytorch-24.11.sif`, 'utf8')).toBe('current image');
      expect(readdirSync(staging)).toEqual([]);
      expectNoSecrets(error.message + reporter.text(), sshd);
    } finally {
      execFileSync('umount', [staging]);
    }
  }, 60_000);
});

describe('the remote lock', () => {
  test('two publishers of the same image at once leave one complete file, never an interleaving', async () => {
    const staging = userDir(sshd, 'e/staging');
    const live = userDir(sshd, 'e/live');
    const other = path.join(local.dir, 'other.sif');
    randomFile(other, 16 * MiB);
    const publish = async (file: string, reporter: CaptureReporter) => {
      const staged = await stageImage({ target: target(sshd), image: file, stagingDir: staging, remoteName: 'tool-1.0.sif', reporter, owner: file });
      const promoted = await promoteImage({ target: target(sshd), stagedPath: staged.stagedPath, stagedSha256: staged.sha256, remoteDir: live, remoteName: 'tool-1.0.sif', keep: 2, lockTimeoutMs: 30_000, protectedPaths: [], reporter, owner: file });
      return { ...promoted, sha256: staged.sha256 };
    };
    const reporters = [new CaptureReporter(), new CaptureReporter()];
    const results = await Promise.allSettled([publish(image, reporters[0]), publish(other, reporters[1])]);
    const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(done.length).toBeGreaterThan(0);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).message).toMatch(/staged image .* (is missing|another run staged over it)/);
    // Whoever succeeded promoted its own image: the live file is the one the last successful publisher staged.
    expect(done.map((d) => d.sha256)).toContain(sha256File(`${live}/tool-1.0.sif`));
    expect(readdirSync(live).sort()).toEqual(['.build-image.json', 'tool-1.0.sif']);
    expect(readdirSync(staging).filter((n) => n.includes('lock') || n.includes('partial'))).toEqual([]);
  }, 60_000);

  test('a staged file another run replaced after this run staged it is not promoted', async () => {
    const staging = userDir(sshd, 'e2/staging');
    const live = userDir(sshd, 'e2/live');
    const other = path.join(local.dir, 'other-e2.sif');
    const otherSha = randomFile(other, 8 * MiB);
    const mine = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'tool-1.0.sif', reporter: new CaptureReporter() });
    // Another run stages a different image of the same name before this one promotes.
    const theirs = await stageImage({ target: target(sshd), image: other, stagingDir: staging, remoteName: 'tool-1.0.sif', reporter: new CaptureReporter() });
    expect(theirs.stagedPath).toBe(mine.stagedPath);

    const reporter = new CaptureReporter();
    const promote = (sha: string) =>
      promoteImage({ target: target(sshd), stagedPath: mine.stagedPath, stagedSha256: sha, remoteDir: live, remoteName: 'tool-1.0.sif', keep: 2, lockTimeoutMs: 30_000, protectedPaths: [], reporter });
    const error = await promote(mine.sha256).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toBe(
      `the staged image ${mine.stagedPath} has sha256 ${otherSha}, not ${imageSha}: another run staged over it; nothing was promoted, run the stage step again`,
    );
    expect(readdirSync(live)).toEqual([]);
    expect(sha256File(mine.stagedPath)).toBe(otherSha);
    expect(readdirSync(staging).filter((n) => n.startsWith('.'))).toEqual([]);

    // The run that staged it promotes it.
    await promote(otherSha);
    expect(sha256File(`${live}/tool-1.0.sif`)).toBe(otherSha);
    expect(reporter.text()).toContain(`${mine.stagedPath} has sha256 ${otherSha} (openssl)`);
  }, 60_000);

  test('a stale lock is taken over, with a warning naming its holder', async () => {
    const staging = userDir(sshd, 'f/staging');
    const live = userDir(sshd, 'f/live');
    const lock = `${live}/.pytorch-24.11.sif.lock`;
    writeFileSync(lock, 'owner: crashed-runner\nrun: https://ci.example/run/1\ntime: 2026-01-01T00:00:00Z\ntoken: x\n');
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(lock, old, old);
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter });
    const promoted = await promoteImage({ target: target(sshd), stagedPath: staged.stagedPath, remoteDir: live, remoteName: 'pytorch-24.11.sif', keep: 2, lockTimeoutMs: 60_000, protectedPaths: [], reporter });
    expect(promoted.tookOverLockFrom).toMatch(/crashed-runner/);
    expect(reporter.text()).toMatch(/took over a stale lock .* \(held by crashed-runner, run https:\/\/ci.example\/run\/1/);
    expect(existsSync(lock)).toBe(false);
    expect(sha256File(`${live}/pytorch-24.11.sif`)).toBe(imageSha);
  }, 60_000);
});

/** A copy of a SIF fixture whose labels carry this tool's build key (patched in place, same length). */
function labelledSif(file: string): void {
  const data = readFileSync('test/fixtures/sif/busybox-gzip.sif');
  const from = Buffer.from('"org.label-schema.usage.singularity.deffile.bootstrap":"scratch"');
  const to = Buffer.from('"io.github.sjtu-hpc.build-image.build-key":"sha256:0123456789ab"');
  expect(to.length).toBe(from.length);
  const at = data.indexOf(from);
  expect(at).toBeGreaterThan(0);
  to.copy(data, at);
  writeFileSync(file, data);
}

describe('retention', () => {
  test('deletes only old versions this tool published (manifest or labels), never a hand-uploaded file, the alias target or protected files', async () => {
    const staging = userDir(sshd, 'g/staging');
    const live = userDir(sshd, 'g/live');
    const names = ['pytorch-24.01.sif', 'pytorch-24.04.sif', 'pytorch-24.07.sif', 'pytorch-24.08.sif', 'pytorch-24.09.sif', 'gromacs-2018.2.sif'];
    names.forEach((n, i) => {
      if (n === 'pytorch-24.09.sif') labelledSif(`${live}/${n}`);
      else writeFileSync(`${live}/${n}`, n);
      const when = new Date(Date.now() - (10 - i) * 3600_000);
      utimesSync(`${live}/${n}`, when, when);
    });
    // 24.01, 24.04 and 24.07 were published by this tool; 24.08 was uploaded by hand; 24.09 carries our labels.
    const record = { family: 'pytorch', size: 17, published: '2026-01-01T00:00:00Z' };
    writeFileSync(`${live}/.build-image.json`, JSON.stringify({ tool: 'build-image', images: { 'pytorch-24.01.sif': record, 'pytorch-24.04.sif': record, 'pytorch-24.07.sif': record } }));
    // Provenance records beside two of them: one goes with its image, the other stays with its kept image.
    for (const v of ['24.01', '24.04']) writeFileSync(`${live}/pytorch-${v}.provenance.json`, '{}');
    const reporter = new CaptureReporter();
    const staged = await stageImage({ target: target(sshd), image, stagingDir: staging, remoteName: 'pytorch-24.11.sif', reporter });
    const promote = (keep: number, dryRun = false) =>
      promoteImage({
        target: target(sshd),
        stagedPath: staged.stagedPath,
        stagedSha256: staged.sha256,
        remoteDir: live,
        remoteName: 'pytorch-24.11.sif',
        alias: 'pytorch.sif',
        keep,
        lockTimeoutMs: 60_000,
        protectedPaths: [`${live}/pytorch-24.01.sif`],
        reporter,
        dryRun,
      });
    // A dry run lists what would go, and changes nothing.
    const planned = await promote(1, true);
    expect(planned.operation).toBe('dry-run');
    expect(planned.deleted.sort()).toEqual([`${live}/pytorch-24.04.sif`, `${live}/pytorch-24.07.sif`, `${live}/pytorch-24.09.sif`]);
    expect(readdirSync(live)).toContain('pytorch-24.04.sif');
    expect(readdirSync(staging)).toEqual(['pytorch-24.11.sif']);

    // keep: 0 turns retention off: the image goes live, nothing is deleted.
    const off = await promote(0);
    expect(off.deleted).toEqual([]);
    expect(readdirSync(live).filter((n) => n.endsWith('.sif')).sort()).toEqual([...names, 'pytorch-24.11.sif', 'pytorch.sif'].sort());

    // A re-run (nothing staged now) is "already promoted" and applies keep: 2.
    const promoted = await promote(2);
    expect(promoted.operation).toBe('already-promoted');
    expect(promoted.deleted.sort()).toEqual([`${live}/pytorch-24.04.sif`, `${live}/pytorch-24.07.sif`]);
    expect(readdirSync(live).sort()).toEqual(['.build-image.json', 'gromacs-2018.2.sif', 'pytorch-24.01.provenance.json', 'pytorch-24.01.sif', 'pytorch-24.08.sif', 'pytorch-24.09.sif', 'pytorch-24.11.sif', 'pytorch.sif']);
    expect(statSync(`${live}/pytorch.sif`).size).toBe(24 * MiB);
    expect(reporter.text()).toContain('left alone (not published by build-image: no record, no labels): pytorch-24.08.sif');
    const summary = renderText(promoteSummary(promoted));
    expect(summary).toMatch(/Deleted +.*pytorch-24.04.sif/);
    expect(summary).toMatch(/Left alone +pytorch-24.08.sif \(not published by build-image\)/);
    const manifest = JSON.parse(readFileSync(`${live}/.build-image.json`, 'utf8')).images;
    expect(Object.keys(manifest).sort()).toEqual(['pytorch-24.01.sif', 'pytorch-24.11.sif']);
  }, 60_000);
});

describe('cancellation', () => {
  test('a cancelled upload (SIGTERM, as a cancelled workflow sends) stops, releases the lock, and the next run resumes', async () => {
    const staging = userDir(sshd, 'cancel/staging');
    const live = userDir(sshd, 'cancel/live');
    const big = path.join(local.dir, 'big.sif');
    const bigSha = randomFile(big, 512 * MiB);
    const keyFile = path.join(local.dir, 'cancel-key');
    writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
    const cliArgs = [
      path.resolve('dist/cli.js'), 'stage', '--image', big, '--sftp-host', sshd.host, '--sftp-port', String(sshd.port), '--sftp-username', sshd.user,
      '--sftp-private-key-file', keyFile, '--sftp-known-hosts', sshd.knownHostsLine, '--staging-dir', staging, '--remote-dir', live, '--remote-name', 'big-1.0.sif',
    ];
    const child = spawn(process.execPath, cliArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    // Cancel once a good part of the image is on the server.
    const partial = `${staging}/.big-1.0.sif.partial`;
    while (!(existsSync(partial) && statSync(partial).size > 64 * MiB)) {
      if (child.exitCode !== null) throw new Error(`the upload ended before it could be cancelled:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    const code = await exited;

    // 128 + 15, as a shell reports a process ended by SIGTERM.
    expect(code).toBe(143);
    expect(out).toMatch(/^error: .*cancelled/m);
    expect(out).not.toMatch(/^\s+at /m);
    // Nothing live, no lock; the partial stays for the next run.
    expect(readdirSync(live)).toEqual([]);
    expect(readdirSync(staging)).toEqual(['.big-1.0.sif.partial']);
    const kept = statSync(partial).size;
    expect(kept).toBeLessThan(512 * MiB);

    const again = spawnSync(process.execPath, cliArgs, { encoding: 'utf8' });
    expect(again.status).toBe(0);
    expect(again.stdout + again.stderr).toMatch(new RegExp(`resuming ${partial} from [\\d.]+ MiB`));
    expect(sha256File(`${staging}/big-1.0.sif`)).toBe(bigSha);
    expect(readdirSync(staging)).toEqual(['big-1.0.sif']);
  }, 120_000);
});
