// The writer: sends ranges of the image over one or more SFTP channels, each channel its own stripe (a list of
// ranges written in offset order) with many write requests in flight, and reports every acknowledged write so the
// caller knows exactly what is on the server.
import type { FileHandle } from 'node:fs/promises';
import type { SFTPWrapper } from 'ssh2';
import { SftpError } from './connect.js';
import type { Range } from './ranges.js';

export interface StripeWriterOptions {
  fh: FileHandle;
  image: string;
  /** One open handle of the partial per channel, and the ranges that channel writes. */
  stripes: { sftp: SFTPWrapper; handle: Buffer; ranges: Range[] }[];
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

/** Writes every stripe; rejects with the first failure (a dropped connection is a network SftpError). */
export async function writeStripes(o: StripeWriterOptions): Promise<void> {
  const state = { failure: undefined as Error | undefined, wakers: new Set<() => void>() };
  const fail = (error: Error) => {
    state.failure ??= error;
    for (const w of state.wakers) w();
  };
  const onAbort = () => fail(new SftpError('cancelled'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  void o.closed.then(() => fail(new SftpError('the connection closed', 'network')));
  try {
    await Promise.all(o.stripes.map((s, i) => writeStripe(o, i, s, state, fail)));
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  if (state.failure) throw state.failure;
}

async function writeStripe(
  o: StripeWriterOptions,
  channel: number,
  stripe: StripeWriterOptions['stripes'][number],
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
  const read = (at: number, end: number) => {
    const buf = Buffer.allocUnsafe(Math.min(block, end - at));
    return o.fh.read(buf, 0, buf.length, at);
  };
  let next: ReturnType<typeof read> | undefined;
  try {
    for (const range of stripe.ranges) {
      let pos = range.start;
      next = pos < range.end ? read(pos, range.end) : undefined;
      while (next) {
        const { bytesRead, buffer } = await next;
        if (bytesRead !== buffer.length) throw new SftpError(`the image ${o.image} changed while it was being uploaded`, 'config');
        const at = pos;
        pos += bytesRead;
        next = pos < range.end ? read(pos, range.end) : undefined;
        for (let off = 0; off < bytesRead; off += o.chunk) {
          while (inFlight >= o.requests && !state.failure) await wait();
          if (state.failure) return;
          const len = Math.min(o.chunk, bytesRead - off);
          const start = at + off;
          inFlight++;
          stripe.sftp.write(stripe.handle, buffer, off, len, start, (err) => {
            inFlight--;
            if (err) fail(err);
            else o.onWritten(channel, start, start + len);
            poke();
          });
        }
      }
    }
    while (inFlight > 0 && !state.failure) await wait();
  } catch (error) {
    fail(error as Error);
  } finally {
    next?.catch(() => undefined); // a read ahead still under way when the stripe stopped
    state.wakers.delete(poke);
  }
}
