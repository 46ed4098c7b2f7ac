// The range map of what is on the server, its record beside the partial, stripes, and the channel-count choice.
import { describe, expect, test } from '@jest/globals';
import { chooseChannels } from '../../src/publish/channels.js';
import { decodeRanges, encodeRanges, RangeMap, splitStripes } from '../../src/publish/ranges.js';

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

describe('splitStripes', () => {
  test('shares the missing bytes between channels on MiB boundaries, in offset order, disjoint and complete', () => {
    const gaps = [
      { start: 0, end: 3 * MiB },
      { start: 5 * MiB, end: 10 * MiB },
    ];
    const stripes = splitStripes(gaps, 4);
    expect(stripes).toHaveLength(4);
    const all = stripes.flat();
    expect(all.reduce((n, r) => n + r.end - r.start, 0)).toBe(8 * MiB);
    expect(new RangeMap(all).ranges).toEqual(gaps);
    for (const r of all) expect(r.start % MiB).toBe(0);
    expect(stripes[0]).toEqual([{ start: 0, end: 2 * MiB }]);
    expect(stripes[1]).toEqual([
      { start: 2 * MiB, end: 3 * MiB },
      { start: 5 * MiB, end: 6 * MiB },
    ]);
  });

  test('never more stripes than MiB pieces, and none for nothing', () => {
    expect(splitStripes([{ start: 0, end: 100 }], 8)).toEqual([[{ start: 0, end: 100 }]]);
    expect(splitStripes([], 4)).toEqual([]);
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
    expect(chooseChannels({ setting: 'auto', rttMs: 40, bytes, host: '10.0.0.7' }).channels).toBe(3);
    expect(chooseChannels({ setting: 3, rttMs: 0.1, bytes, host: '127.0.0.1' }).channels).toBe(3);
  });

  test('a long link gets enough channel windows in flight to fill it', () => {
    // 2 MiB per 100 ms is about 21 MB/s a channel; 1 Gbit/s (assumed) needs 6.
    expect(chooseChannels({ setting: 'auto', rttMs: 100, bytes })).toMatchObject({ channels: 6 });
    expect(chooseChannels({ setting: 'auto', rttMs: 250, bytes }).channels).toBe(15);
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
