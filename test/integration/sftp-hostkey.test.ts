// Host-key verification and connection errors against a real sshd: a refused key stops the connection before the
// client authenticates, so nothing reaches the server.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { connectSftp, HostKeyError, type SftpTarget } from '../../src/publish/connect.js';
import { stageImage } from '../../src/publish/stage.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { randomFile } from '../helpers/files.js';
import { freePort } from '../helpers/registry.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tools.js';

let sshd: Sshd;
let local: { dir: string; cleanup: () => void };
let image: string;
// Another server's key: what an impostor would present.
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINIRXpws1XgPKJ9e/BshGZ7aBn9qOrRehsb8Z23qq5bj';
const OTHER_FP = 'SHA256:TRWTfx2ZT95Tu3krRR1yqGl9nMs/lS8oxr0ZF4hhWsA';

beforeAll(async () => {
  sshd = await startSshd();
  local = tempDir('bi-hostkey-');
  image = path.join(local.dir, 'img-1.sif');
  randomFile(image, 1024 * 1024);
}, 30_000);

afterAll(async () => {
  await sshd?.stop();
  local?.cleanup();
});

function target(extra: Partial<SftpTarget>): SftpTarget {
  return { host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.privateKey, ...extra };
}

async function refusal(extra: Partial<SftpTarget>): Promise<{ error: Error; log: string; staging: string }> {
  const staging = path.join(sshd.root, `staging-${Math.random().toString(36).slice(2)}`);
  const reporter = new CaptureReporter();
  const before = (sshd.log().match(/Accepted publickey/g) ?? []).length;
  let error: Error | undefined;
  try {
    await stageImage({ target: target(extra), image, stagingDir: staging, remoteName: 'img-1.sif', reporter, connect: { retryDelayMs: 5000 } });
  } catch (e) {
    error = e as Error;
  }
  expect(error).toBeInstanceOf(HostKeyError);
  // Nothing reached the server: no login, no staging dir, no bytes.
  expect((sshd.log().match(/Accepted publickey/g) ?? []).length).toBe(before);
  expect(existsSync(staging)).toBe(false);
  return { error: error!, log: reporter.text(), staging };
}

describe('host key verification', () => {
  test('a different key for the host is refused before authenticating, with what was seen and how to pin it', async () => {
    const started = Date.now();
    const { error, log } = await refusal({ knownHosts: `[127.0.0.1]:${sshd.port} ${OTHER}\n` });
    expect(error.message).toContain(`HOST KEY MISMATCH: 127.0.0.1:${sshd.port} presented a ssh-ed25519 host key with fingerprint ${sshd.fingerprint}, but expected ssh-ed25519 ${OTHER_FP}`);
    expect(error.message).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1 into sftp-known-hosts, or sftp-host-fingerprint: ${sshd.fingerprint}`);
    // Not retried: a host-key refusal is not a network failure.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(log).not.toMatch(/retrying/);
  }, 30_000);

  test('an unknown host is refused', async () => {
    const { error } = await refusal({ knownHosts: `[127.0.0.1]:${sshd.port + 1} ${sshd.hostKeyType} ${sshd.hostKeyBase64}\n` });
    expect(error.message).toContain(`sftp-known-hosts has no entry for [127.0.0.1]:${sshd.port}`);
  }, 30_000);

  test('a wrong pinned fingerprint is refused', async () => {
    const { error } = await refusal({ fingerprint: OTHER_FP });
    expect(error.message).toContain(`but expected pinned ${OTHER_FP}`);
  }, 30_000);

  test('with neither known-hosts nor a fingerprint nothing is trusted', async () => {
    const { error } = await refusal({});
    expect(error.message).toContain('neither sftp-known-hosts nor sftp-host-fingerprint is set');
    expect(error.message).toContain(sshd.fingerprint);
  }, 30_000);

  test('a @revoked key is refused even though another line lists it', async () => {
    const line = `${sshd.hostKeyType} ${sshd.hostKeyBase64}`;
    const { error } = await refusal({ knownHosts: `[127.0.0.1]:${sshd.port} ${line}\n@revoked * ${line}\n` });
    expect(error.message).toContain('marks @revoked');
  }, 30_000);

  test('a hashed known_hosts entry (ssh-keygen -H) and a pinned fingerprint are both accepted', async () => {
    const file = path.join(local.dir, 'known_hosts');
    writeFileSync(file, sshd.knownHostsLine + '\n');
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'pipe' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    const a = await connectSftp(target({ knownHosts: hashed }));
    expect(a.hostKey).toMatchObject({ via: 'known-hosts', fingerprint: sshd.fingerprint });
    await a.end();
    // A @cert-authority line beside it is ignored, and the log says so.
    const reporter = new CaptureReporter();
    const c = await connectSftp(target({ knownHosts: `@cert-authority * ${sshd.hostKeyType} ${sshd.hostKeyBase64}\n${hashed}` }), { reporter });
    await c.end();
    expect(reporter.text()).toContain('warning: known-hosts line 1: @cert-authority lines are not supported');
    const b = await connectSftp(target({ fingerprint: sshd.fingerprint }));
    expect(b.hostKey.via).toBe('fingerprint');
    await b.end();
  }, 30_000);
});

describe('connection errors', () => {
  test('a wrong passphrase is a clear error that never shows the key or the passphrase', async () => {
    const reporter = new CaptureReporter();
    let message = '';
    try {
      await connectSftp(target({ knownHosts: sshd.knownHostsLine, privateKey: sshd.encryptedKey, passphrase: 'not the passphrase' }), { reporter });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^sftp-private-key could not be used: .*check the key format and sftp-passphrase\)$/);
    for (const line of sshd.encryptedKey.split('\n').filter((l) => l.length > 20)) expect(message + reporter.text()).not.toContain(line);
    expect(message).not.toContain('not the passphrase');
  }, 30_000);

  test('a key the server does not accept is an authentication error, not retried', async () => {
    const other = path.join(local.dir, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], { stdio: 'pipe' });
    const reporter = new CaptureReporter();
    await expect(connectSftp(target({ knownHosts: sshd.knownHostsLine, privateKey: readFileSync(other, 'utf8') }), { reporter, retryDelayMs: 5000 })).rejects.toThrow(
      `authentication failed for ${sshd.user}@127.0.0.1:${sshd.port}: the server did not accept sftp-private-key`,
    );
    expect(reporter.text()).not.toMatch(/retrying/);
  }, 30_000);

  test('network failures are retried with backoff, then reported', async () => {
    const port = await freePort();
    const reporter = new CaptureReporter();
    await expect(connectSftp({ ...target({ knownHosts: sshd.knownHostsLine }), port }, { reporter, retries: 2, retryDelayMs: 50 })).rejects.toThrow(
      `cannot connect to ${sshd.user}@127.0.0.1:${port}`,
    );
    expect(reporter.lines.filter((l) => /retrying in/.test(l))).toHaveLength(2);
  }, 30_000);
});
