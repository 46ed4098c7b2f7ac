// The range map of what is on the server, its record beside the partial, stripes, and the channel-count choice.
import { describe, expect, test } from '@jest/globals';
import { chooseChannels, requestsInFlight } from '../../src/publish/channels.js';
import { decodeRanges, encodeRanges, PieceQueue, RangeMap } from '../../src/publish/ranges.js';

const MiB = 1024 * 1024;

describe('RangeMap', () => {
  test('merges overlapping and touching ranges, keeps them sorted, ignores empty ones', () => {
    const map = new RangeMap();
    map.add(100, 200);
    map.add(0, 50);
    map.add(200, 300); // touching: merged
    map.add(40, 60); // overlapping the first
    map.add(500, 500); // empty
    expect(map.ranges).toEqual([
      { start: 0, end: 60 },
      { start: 100, end: 300 },
    ]);
    expect(map.total).toBe(260);
    map.add(50, 120); // bridges the gap
    expect(map.ranges).toEqual([{ start: 0, end: 300 }]);
  });

  test('gaps are what of the file is missing; the prefix is the sequential resume offset', () => {
    const map = new RangeMap([
      { start: 10, end: 20 },
      { start: 30, end: 40 },
    ]);
    expect(map.gaps(50)).toEqual([
      { start: 0, end: 10 },
      { start: 20, end: 30 },
      { start: 40, end: 50 },
    ]);
    expect(map.prefix()).toBe(0);
    map.add(0, 10);
    expect(map.prefix()).toBe(20);
    expect(map.gaps(40)).toEqual([{ start: 20, end: 30 }]);
    expect(new RangeMap([{ start: 0, end: 50 }]).gaps(50)).toEqual([]);
    expect(new RangeMap().gaps(0)).toEqual([]);
  });

  test('covers: a range inside one confirmed range', () => {
    const map = new RangeMap([
      { start: 0, end: 10 },
      { start: 20, end: 30 },
    ]);
    expect(map.covers(2, 8)).toBe(true);
    expect(map.covers(5, 25)).toBe(false);
    expect(map.covers(20, 30)).toBe(true);
    expect(map.covers(7, 7)).toBe(true);
  });
});

describe('PieceQueue', () => {
  const drain = (q: PieceQueue) => {
    const out = [];
    for (let r = q.next(); r; r = q.next()) out.push(r);
    return out;
  };

  test('gives the missing bytes in offset order, disjoint and complete, cut on MiB boundaries', () => {
    const gaps = [
      { start: 0, end: 3 * MiB },
      { start: 5 * MiB + 100, end: 14 * MiB },
    ];
    const q = new PieceQueue(gaps, 4 * MiB);
    expect(q.remaining).toBe(4);
    const pieces = drain(q);
    expect(pieces).toEqual([
      { start: 0, end: 3 * MiB },
      { start: 5 * MiB + 100, end: 9 * MiB },
      { start: 9 * MiB, end: 13 * MiB },
      { start: 13 * MiB, end: 14 * MiB },
    ]);
    expect(new RangeMap(pieces).ranges).toEqual(gaps);
    expect(q.remaining).toBe(0);
    expect(q.next()).toBeUndefined();
  });

  test('pieces smaller than the alignment still advance, and nothing missing gives no piece', () => {
    expect(drain(new PieceQueue([{ start: 1000, end: 4000 }], 1024, 4096))).toEqual([
      { start: 1000, end: 2024 },
      { start: 2024, end: 3048 },
      { start: 3048, end: 4000 },
    ]);
    expect(drain(new PieceQueue([], 4 * MiB))).toEqual([]);
  });

  test('channels taking turns from one queue fill the file from the front', () => {
    const q = new PieceQueue([{ start: 0, end: 64 * MiB }], 4 * MiB);
    const byChannel: number[][] = [[], [], []];
    for (let i = 0; q.remaining > 0; i = (i + 1) % 3) byChannel[i].push(q.next()!.start / MiB);
    expect(byChannel[0].slice(0, 3)).toEqual([0, 12, 24]);
    expect(byChannel[2][0]).toBe(8);
  });

  test('shared by several channels, the pieces taper at the end so the channels finish within a MiB of each other', () => {
    // Nine channels of equal speed, each taking the next piece when it has sent its last: the time a channel is done is
    // the bytes it sent. Whole 4 MiB pieces to the end leave some channels 4 MiB (two round trips) behind the others.
    const finishes = (q: PieceQueue, channels: number) => {
      const done = Array<number>(channels).fill(0);
      const pieces = [];
      for (;;) {
        const first = done.indexOf(Math.min(...done));
        const piece = q.next();
        if (!piece) return { spread: Math.max(...done) - Math.min(...done), pieces };
        pieces.push(piece);
        done[first] += piece.end - piece.start;
      }
    };
    const gaps = [{ start: 0, end: 128 * MiB }];
    expect(finishes(new PieceQueue(gaps, 4 * MiB), 9).spread).toBe(4 * MiB);
    const shared = new PieceQueue(gaps, 4 * MiB);
    shared.sharedBy = 9;
    const { spread, pieces } = finishes(shared, 9);
    expect(spread).toBeLessThanOrEqual(MiB);
    expect(new RangeMap(pieces).ranges).toEqual(gaps);
    for (const [i, p] of pieces.entries()) {
      expect(p.start % MiB).toBe(0);
      expect(p.end - p.start).toBeLessThanOrEqual(4 * MiB);
      if (i > 0) expect(p.start).toBe(pieces[i - 1].end);
    }
    expect(pieces[0].end).toBe(4 * MiB);
    expect(pieces.at(-1)!.end - pieces.at(-1)!.start).toBe(MiB);
  });

  test('tapering cuts a gap that starts off a MiB boundary at the next one, and the queue says when it is drained', () => {
    const q = new PieceQueue([{ start: 100, end: 3 * MiB }, { start: 7 * MiB + 5, end: 9 * MiB }], 4 * MiB);
    q.sharedBy = 4;
    let drained = 0;
    q.onDrained = () => drained++;
    const pieces = [];
    for (let r = q.next(); r; r = q.next()) pieces.push(r);
    expect(pieces).toEqual([
      { start: 100, end: MiB },
      { start: MiB, end: 2 * MiB },
      { start: 2 * MiB, end: 3 * MiB },
      { start: 7 * MiB + 5, end: 8 * MiB },
      { start: 8 * MiB, end: 9 * MiB },
    ]);
    expect(drained).toBe(1);
    expect(q.remaining).toBe(0);
  });
});

describe('the ranges record', () => {
  const map = new RangeMap([
    { start: 0, end: 4096 },
    { start: 8192, end: 10_000 },
  ]);

  test('round-trips, also when written over a longer earlier record', () => {
    const record = encodeRanges(20_000, map);
    expect(decodeRanges(record, 20_000)?.ranges).toEqual(map.ranges);
    const longer = encodeRanges(20_000, new RangeMap([0, 1, 2, 3, 4, 5].map((i) => ({ start: i * 1000, end: i * 1000 + 10 }))));
    const overwritten = Buffer.concat([record, longer.subarray(record.length)]);
    expect(decodeRanges(overwritten, 20_000)?.ranges).toEqual(map.ranges);
  });

  test('trusts nothing from a torn, altered or foreign record, or one for another size', () => {
    const record = encodeRanges(20_000, map);
    expect(decodeRanges(record.subarray(0, record.length - 5), 20_000)).toBeUndefined();
    expect(decodeRanges(Buffer.from(record.toString().replace('8192', '8191')), 20_000)).toBeUndefined();
    expect(decodeRanges(Buffer.from('{"size":20000,"ranges":[[0,20000]]}'), 20_000)).toBeUndefined();
    expect(decodeRanges(Buffer.alloc(0), 20_000)).toBeUndefined();
    expect(decodeRanges(record, 30_000)).toBeUndefined();
    expect(decodeRanges(encodeRanges(5000, new RangeMap([{ start: 0, end: 4096 }])), 5000)?.total).toBe(4096);
  });
});

describe('chooseChannels', () => {
  const bytes = 1024 * MiB;

  test('loopback and LAN stay on one channel', () => {
    expect(chooseChannels({ setting: 'auto', rttMs: 0.2, bytes }).channels).toBe(1);
    expect(chooseChannels({ setting: 'auto', rttMs: 3, bytes }).channels).toBe(1);
  });

  test('a server on this machine gets one channel whatever the load made the round trip', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
      expect(chooseChannels({ setting: 'auto', rttMs: 40, bytes, host })).toEqual({ channels: 1, why: `round trip 40 ms to ${host} on this machine: one channel` });
    }
    expect(chooseChannels({ setting: 'auto', rttMs: 40, bytes, host: '10.0.0.7' }).channels).toBe(4);
    expect(chooseChannels({ setting: 3, rttMs: 0.1, bytes, host: '127.0.0.1' }).channels).toBe(3);
  });

  test('a long link gets enough channel windows in flight to fill it', () => {
    // sshd's 2 MiB window, three quarters of it in flight on average: at 100 ms about 15.7 MB/s a channel, so
    // 1 Gbit/s (assumed) needs 8.
    expect(chooseChannels({ setting: 'auto', rttMs: 100, bytes })).toMatchObject({ channels: 8 });
    expect(chooseChannels({ setting: 'auto', rttMs: 180, bytes }).channels).toBe(15);
    expect(chooseChannels({ setting: 'auto', rttMs: 20, bytes }).channels).toBe(2);
    // A measured 200 Mbit/s link at 100 ms: 25 MB/s, two channels.
    expect(chooseChannels({ setting: 'auto', rttMs: 100, bytes, linkBytesPerSecond: 25_000_000 }).channels).toBe(2);
    // Capped, and never more channels than 8 MiB pieces to share.
    expect(chooseChannels({ setting: 'auto', rttMs: 1000, bytes }).channels).toBe(16);
    expect(chooseChannels({ setting: 'auto', rttMs: 100, bytes: 12 * MiB }).channels).toBe(2);
  });

  test('a fixed count is used as given, within 1 to 16', () => {
    expect(chooseChannels({ setting: 4, rttMs: 0.1, bytes })).toEqual({ channels: 4, why: 'sftp-channels: 4' });
    expect(chooseChannels({ setting: 64, rttMs: 0.1, bytes }).channels).toBe(16);
  });
});

describe('requestsInFlight', () => {
  const KiB = 1024;

  test('half a channel window on short links, so the sender never waits for a window adjustment', () => {
    // 2 MiB window, 64 KiB writes: 16 on loopback and LAN.
    expect(requestsInFlight(0.1, 64 * KiB)).toBe(16);
    expect(requestsInFlight(3, 64 * KiB)).toBe(16);
    expect(requestsInFlight(0.1, 32 * KiB)).toBe(32);
  });

  test('enough for 1 Gbit/s over the round trip, at most a whole window', () => {
    // 125 MB/s × 10 ms = 1.25 MB: 20 writes of 64 KiB.
    expect(requestsInFlight(10, 64 * KiB)).toBe(20);
    expect(requestsInFlight(100, 64 * KiB)).toBe(32);
    expect(requestsInFlight(250, 256 * KiB)).toBe(8);
  });
});
