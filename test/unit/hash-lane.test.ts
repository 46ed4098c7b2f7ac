// The hashing process kept open for an upload's segments: answers are taken only for the blocks they name. The real
// process runs against OpenSSH and busybox in sftp-striped.test.ts; here the server's side is scripted, to send what
// a real shell could: a line of its own first, answers out of order, a command that ends.
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SftpConnection } from '../../src/publish/connect.js';
import { HashLane, laneScript } from '../../src/publish/hash-lane.js';
import { shellQuote } from '../../src/util/shell.js';
import { requireTools } from '../helpers/tools.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

class FakeChannel extends EventEmitter {
  written: string[] = [];
  ended = false;
  stderr = Object.assign(new EventEmitter(), { resume: () => undefined });
  write(line: string) {
    this.written.push(line);
    return true;
  }
  end() {
    this.ended = true;
  }
  close() {
    this.emit('close');
  }
}

async function lane(open = true): Promise<{ lane: HashLane; channel: FakeChannel; commands: string[] }> {
  const channel = new FakeChannel();
  const commands: string[] = [];
  const conn = {
    isOpen: () => open,
    ssh: {
      exec: (command: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => {
        commands.push(command);
        cb(undefined, channel);
      },
    },
  } as unknown as SftpConnection;
  const opened = await HashLane.open(conn, "/img/.a b'c.sif.partial");
  return { lane: opened!, channel, commands };
}

describe('HashLane', () => {
  test('asks for blocks on standard input and takes each answer for the blocks it names, in any order', async () => {
    const { lane: l, channel, commands } = await lane();
    expect(commands[0]).toMatch(/^sh -c /);
    expect(commands[0]).toContain('.a b');
    const first = l.hash(0, 64, 10_000);
    const second = l.hash(64, 56, 10_000);
    expect(channel.written).toEqual(['0 64\n', '64 56\n']);
    // A line the account's shell printed on its own, then the answers, the second first and split across chunks.
    channel.emit('data', Buffer.from('Welcome to the cluster\n'));
    channel.emit('data', Buffer.from(`64 56 ${B} *st`));
    channel.emit('data', Buffer.from(`din\n0 64 ${A}  -\n`));
    await expect(first).resolves.toEqual({ sha256: A, tool: 'sha256sum' });
    await expect(second).resolves.toEqual({ sha256: B, tool: 'openssl' });
  });

  test('an answer for blocks nobody asked about is not taken for another question', async () => {
    const { lane: l, channel } = await lane();
    const asked = l.hash(0, 64, 10_000);
    channel.emit('data', Buffer.from(`64 64 ${B} *stdin\n`));
    channel.emit('data', Buffer.from(`0 64 ${A} *stdin\n`));
    await expect(asked).resolves.toEqual({ sha256: A, tool: 'openssl' });
  });

  test('a hash the server could not compute is a refusal, not a hash', async () => {
    const { lane: l, channel } = await lane();
    const asked = l.hash(0, 64, 10_000);
    channel.emit('data', Buffer.from('0 64 \n'));
    await expect(asked).resolves.toEqual({ refused: expect.stringContaining('hashing printed') });
  });

  test('the process ending fails the questions still open, and the lane is no longer used', async () => {
    const { lane: l, channel } = await lane();
    const asked = l.hash(0, 64, 10_000);
    channel.emit('close');
    await expect(asked).rejects.toThrow('the hashing command on the server ended');
    expect(l.usable).toBe(false);
    await expect(l.hash(64, 64, 10_000)).rejects.toThrow();
  });

  test('no answer in time fails the question as a network failure and closes the channel', async () => {
    const { lane: l, channel } = await lane();
    let closed = false;
    channel.on('close', () => (closed = true));
    await expect(l.hash(0, 64, 20)).rejects.toThrow(/no hash from the server within/);
    expect(closed).toBe(true);
    expect(l.usable).toBe(false);
  });

  test('questions asked behind others are sent at once, each timed from when the one before it is answered', async () => {
    const { lane: l, channel } = await lane();
    jest.useFakeTimers();
    try {
      const first = l.hash(0, 64, 1000);
      const second = l.hash(64, 64, 1000);
      expect(channel.written).toEqual(['0 64\n', '64 64\n']);
      // The first takes most of its time; the second, queued behind it, is not failed for the time it waited.
      jest.advanceTimersByTime(900);
      channel.emit('data', Buffer.from(`0 64 ${A} *stdin\n`));
      jest.advanceTimersByTime(900);
      channel.emit('data', Buffer.from(`64 64 ${B} *stdin\n`));
      await expect(first).resolves.toEqual({ sha256: A, tool: 'openssl' });
      await expect(second).resolves.toEqual({ sha256: B, tool: 'openssl' });
      expect(l.usable).toBe(true);
      // Its own time is still limited: a third left unanswered fails.
      const third = l.hash(128, 64, 1000);
      jest.advanceTimersByTime(1001);
      await expect(third).rejects.toThrow(/no hash from the server within 1 s/);
    } finally {
      jest.useRealTimers();
    }
  });

  test('closing ends its standard input', async () => {
    const { lane: l, channel } = await lane();
    l.close();
    expect(channel.ended).toBe(true);
    expect(l.usable).toBe(false);
  });
});

// The lane's own program, run here by `sh` as sshd would run it: what it answers for ranges of a real file, with
// Python on the PATH and without it (the shell loop over dd and openssl that a server without Python gets).
describe('the lane program', () => {
  const MiB = 1024 * 1024;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-lane-'));
  const file = path.join(dir, "img a'b.partial");
  const bytes = randomBytes(3 * MiB + 1000);
  writeFileSync(file, bytes);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  // Blocks 0-1, 1-3 (the last block short: the file ends 1000 bytes into it) and 5-6 (past the end: nothing).
  const questions = '0 1\n1 3\n5 1\n';
  const expected = (tool: string) => [`0 1 ${sha(bytes.subarray(0, MiB))} ${tool}`, `1 3 ${sha(bytes.subarray(MiB))} ${tool}`, `5 1 ${sha(Buffer.alloc(0))} ${tool}`];
  const run = (script: string, env: NodeJS.ProcessEnv) => execFileSync('/bin/sh', ['-c', script], { input: questions, env, encoding: 'utf8' }).trim().split('\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('with python3, Python reads each range itself and names itself', () => {
    expect(run(laneScript(file), process.env)).toEqual(expected('python3'));
  });

  test('the program is one line (csh, a login shell some accounts have, refuses a newline inside quotes)', () => {
    expect(laneScript(file)).not.toContain('\n');
    requireTools('csh');
    // Through csh as the login shell, as sshd would run it for such an account.
    const answers = execFileSync('csh', ['-c', `sh -c ${shellQuote(laneScript(file))}`], { input: questions, encoding: 'utf8' }).trim().split('\n');
    expect(answers).toEqual(expected('python3'));
  });

  test('without python3, the shell loop answers the same hashes (openssl)', () => {
    const bin = path.join(dir, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    for (const tool of ['dd', 'openssl']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), path.join(bin, tool));
    const answers = run(laneScript(file), { PATH: bin }).map((line) => line.replace(/ \*stdin$/, ' openssl'));
    expect(answers).toEqual(expected('openssl'));
  });

  test('a file Python cannot read is answered with the error, which is not a hash', () => {
    const answers = run(laneScript(path.join(dir, 'missing')), process.env);
    expect(answers[0]).toMatch(/^0 1 error: .*No such file/);
  });
});
