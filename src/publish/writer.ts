// The writer: sends the missing pieces of the image over one or more SFTP channels, each channel taking the next piece
// from one queue (in offset order) whenever it has room, with many write requests in flight, and reports every
// acknowledged write so the caller knows exactly what is on the server.
import type { FileHandle } from 'node:fs/promises';
import type { SFTPWrapper } from 'ssh2';
import { SftpError } from './connect.js';
import type { PieceQueue } from './ranges.js';

export interface PieceWriterOptions {
  fh: FileHandle;
  image: string;
  /** One open handle of the partial per channel. */
  channels: { sftp: SFTPWrapper; handle: Buffer }[];
  /** What is missing, shared by the channels. */
  queue: PieceQueue;
  /** Bytes per write request; ssh2 splits a larger one into the server's limit, in order. */
  chunk: number;
  /** Write requests in flight per channel. */
  requests: number;
  /** An acknowledged write: the server holds [start, end). */
  onWritten(channel: number, start: number, end: number): void;
  /** Resolves when a connection carrying a channel closes. */
  closed: Promise<void>;
  signal?: AbortSignal;
}

/** Writes every piece; rejects with the first failure (a dropped connection is a network SftpError). */
export async function writePieces(o: PieceWriterOptions): Promise<void> {
  const state = { failure: undefined as Error | undefined, wakers: new Set<() => void>() };
  const fail = (error: Error) => {
    state.failure ??= error;
    for (const w of state.wakers) w();
  };
  const onAbort = () => fail(new SftpError('cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  void o.closed.then(() => fail(new SftpError('the connection closed', 'network')));
  try {
    await Promise.all(o.channels.map((c, i) => writeChannel(o, i, c, state, fail)));
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  if (state.failure) throw state.failure;
}

async function writeChannel(
  o: PieceWriterOptions,
  channel: number,
  target: PieceWriterOptions['channels'][number],
  state: { failure: Error | undefined; wakers: Set<() => void> },
  fail: (error: Error) => void,
): Promise<void> {
  const block = o.chunk * 16;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  state.wakers.add(poke);
  const wait = () => new Promise<void>((r) => (wake = r));
  // The channel's blocks: the pieces it takes from the queue, one at a time, as it gets to them.
  function* blocks(): Generator<{ at: number; end: number }, undefined> {
    for (let piece = o.queue.next(); piece; piece = o.queue.next()) {
      for (let at = piece.start; at < piece.end; at += block) yield { at, end: Math.min(piece.end, at + block) };
    }
  }
  const read = (b: { at: number; end: number } | undefined) => {
    if (!b) return undefined;
    const buf = Buffer.allocUnsafe(b.end - b.at);
    return o.fh.read(buf, 0, buf.length, b.at).then((r) => ({ ...r, at: b.at }));
  };
  const pending = blocks();
  let next: ReturnType<typeof read> = undefined;
  try {
    next = read(pending.next().value);
    while (next) {
      const { bytesRead, buffer, at } = await next;
      if (bytesRead !== buffer.length) throw new SftpError(`the image ${o.image} changed while it was being uploaded`, 'config');
      next = read(pending.next().value);
      for (let off = 0; off < bytesRead; off += o.chunk) {
        while (inFlight >= o.requests && !state.failure) await wait();
        if (state.failure) return;
        const len = Math.min(o.chunk, bytesRead - off);
        const start = at + off;
        inFlight++;
        target.sftp.write(target.handle, buffer, off, len, start, (err) => {
          inFlight--;
          if (err) fail(err);
          else o.onWritten(channel, start, start + len);
          poke();
        });
      }
    }
    while (inFlight > 0 && !state.failure) await wait();
  } catch (error) {
    fail(error as Error);
  } finally {
    next?.catch(() => undefined); // a read ahead still under way when the channel stopped
    state.wakers.delete(poke);
  }
}
