// The hashing process kept open for an upload's segments: answers are taken only for the blocks they name. The real
// process runs against OpenSSH and busybox in sftp-striped.test.ts; here the server's side is scripted, to send what
// a real shell could: a line of its own first, answers out of order, a command that ends.
import { describe, expect, jest, test } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type { SftpConnection } from '../../src/publish/connect.js';
import { HashLane } from '../../src/publish/hash-lane.js';

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
