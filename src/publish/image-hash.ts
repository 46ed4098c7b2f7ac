// The image's sha256, and each verification segment's, from one sequential read of the file on a worker thread. On
// the main thread the hashing (two passes of sha256 over every byte where segments are verified) blocked the event
// loop that keeps the SFTP channels fed, a few milliseconds per 4 MiB read: on a short link the channel's requests in
// flight ran dry meanwhile, and the upload waited for the hashing instead of running beside it on the other core.
import { Worker } from 'node:worker_threads';
import { SftpError } from './connect.js';

/** Plain JavaScript, run by `new Worker(..., { eval: true })`: the bundle has no separate file to point a worker at. */
const WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
(function hash() {
  const fd = fs.openSync(w.path, 'r');
  try {
    const whole = createHash('sha256');
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    let segment = createHash('sha256');
    let start = 0;
    let next = 0;
    for (let p = 0; p < w.size; ) {
      const limit = next < w.ends.length ? w.ends[next] : w.size;
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, limit - p), p);
      if (n === 0) return parentPort.postMessage({ shortAt: p });
      const bytes = buf.subarray(0, n);
      whole.update(bytes);
      if (next < w.ends.length) segment.update(bytes);
      p += n;
      if (next < w.ends.length && p === limit) {
        parentPort.postMessage({ start, end: p, sha256: segment.digest('hex') });
        segment = createHash('sha256');
        start = p;
        next++;
      }
    }
    parentPort.postMessage({ sha256: whole.digest('hex') });
  } finally {
    fs.closeSync(fd);
  }
})();
`;

type Message = { start: number; end: number; sha256: string } | { shortAt: number } | { sha256: string };

export interface ImageHashing {
  /** The whole image's sha256. */
  readonly sha256: Promise<string>;
  /** Ends the worker (the attempt is over, or the hash is in). */
  stop(): void;
}

/**
 * Hashes the first `size` bytes of `image`; `onSegment` is told the sha256 of each segment `[previous end, end)` for
 * the offsets in `ends` (ascending, the last of them at most `size`), in order, as each is read.
 */
export function hashImage(image: string, size: number, ends: number[], onSegment: (start: number, end: number, sha256: string) => void): ImageHashing {
  const worker = new Worker(WORKER, { eval: true, workerData: { path: image, size, ends } });
  const sha256 = new Promise<string>((resolve, reject) => {
    worker.on('message', (m: Message) => {
      if ('shortAt' in m) reject(new SftpError('the image changed size while it was being read', 'config'));
      else if ('end' in m) onSegment(m.start, m.end, m.sha256);
      else resolve(m.sha256);
    });
    worker.on('error', (error) => reject(new SftpError(`reading ${image} failed: ${error.message}`, 'config')));
    // Its messages are all delivered before this: after the hash, rejecting is a no-op.
    worker.on('exit', () => reject(new SftpError(`hashing ${image} stopped before its end`, 'config')));
  });
  sha256.catch(() => undefined);
  return { sha256, stop: () => void worker.terminate() };
}
