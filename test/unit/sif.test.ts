import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  openFile,
  readSif,
  readSifFile,
  SifFormatError,
  type ByteSource,
  type SifDescriptor,
  type SifInfo,
} from '../../src/image/sif.js';

const fixtures = fileURLToPath(new URL('../fixtures/sif/', import.meta.url));

/** What make-fixtures.sh recorded from apptainer itself for one fixture. */
interface Recorded {
  built: { def: string; command: string };
  inspectJson: { data: { attributes: { labels: Record<string, string> } } };
  sifList: string;
  sifHeader: string;
  sifInfo: Record<string, string>;
}

const cases = [
  { name: 'busybox-gzip', compression: 'gzip' },
  { name: 'small-xz', compression: 'xz' },
  { name: 'small-zstd', compression: 'zstd' },
  { name: 'signed-xz', compression: 'xz' },
] as const;

function load(name: string): { bytes: Uint8Array; recorded: Recorded; def: string } {
  const recorded = JSON.parse(readFileSync(`${fixtures}${name}.apptainer.json`, 'utf8')) as Recorded;
  return {
    bytes: new Uint8Array(readFileSync(`${fixtures}${name}.sif`)),
    recorded,
    def: readFileSync(`${fixtures}${recorded.built.def}`, 'utf8'),
  };
}

/** An in-memory ByteSource that remembers every read, with or without telling its size. */
function memory(bytes: Uint8Array, { withSize = true } = {}) {
  const reads: Array<[offset: number, length: number]> = [];
  const source: ByteSource = {
    async read(offset, length) {
      reads.push([offset, length]);
      return bytes.slice(offset, offset + length);
    },
  };
  if (withSize) source.size = bytes.length;
  return { source, reads };
}

/** "Key:   value" lines, as `apptainer sif header` and `sif info` print them. */
function fields(text: string): Record<string, string> {
  return Object.fromEntries(
    text.split('\n').filter((l) => l.includes(':')).map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
    }),
  );
}

/** Rows of `apptainer sif list`; a link to a group shows as "1   (G)". */
function listRows(text: string) {
  return text.split('\n').flatMap((line) => {
    const m = /^(\d+)\s*\|(\S+)\s*\|([^|]+)\|(\d+)-(\d+)\s*\|(.*)$/.exec(line);
    if (!m) return [];
    return [{
      id: Number(m[1]), group: m[2], link: m[3]!.replace(/\s+\(G\)/, '').trim(),
      start: Number(m[4]), end: Number(m[5]), type: m[6]!.trim(),
    }];
  });
}

const asApptainerTime = (d: Date) => d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC');
/** The TYPE column of `sif list`, which adds a partition's metadata after "FS". */
const typeColumn = (d: SifDescriptor) =>
  d.partition ? `${d.type} (${d.partition.fsType}/${d.partition.partType}/${d.partition.arch})` : d.type;
const orNone = (n: number) => (n ? String(n) : 'NONE');

async function formatError(bytes: Uint8Array, options?: { withSize?: boolean }): Promise<SifFormatError> {
  const { source } = memory(bytes, options);
  const err = await readSif(source).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SifFormatError);
  return err as SifFormatError;
}

// Little-endian patching helpers for hand-made corruption.
const patch64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigInt64(at, v, true);
const patch32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const DESCRIPTORS_AT = 4096;
const slot = (i: number) => DESCRIPTORS_AT + i * 585;

/** A seeded generator so failing fuzz cases reproduce. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

describe.each(cases)('reading the $name fixture', ({ name, compression }) => {
  const { bytes, recorded, def } = load(name);
  let info: SifInfo;
  let reads: Array<[number, number]>;

  test('parses', async () => {
    const m = memory(bytes);
    info = await readSif(m.source);
    reads = m.reads;
  });

  test('labels equal what `apptainer inspect --json` printed', () => {
    expect(info.labels).toEqual(recorded.inspectJson.data.attributes.labels);
  });

  test('the definition is the .def file it was built from', () => {
    expect(info.definition).toBe(def);
  });

  test('the primary partition is an amd64 squashfs with the compression it was built with', () => {
    const row = listRows(recorded.sifList).find((r) => r.type.includes('*System'))!;
    expect(info.primary).toEqual({
      descriptorId: row.id,
      fsType: 'Squashfs',
      arch: 'amd64',
      offset: row.start,
      size: row.end - row.start,
      compression,
    });
  });

  test('the header matches `apptainer sif header`', () => {
    const h = fields(recorded.sifHeader);
    expect(info.header).toMatchObject({
      launch: `${h['Launch Script']}\n`,
      magic: 'SIF_MAGIC',
      version: h['Version'],
      arch: h['Primary Architecture'],
      id: h['ID'],
      descriptorsFree: Number(h['Descriptors Free']),
      descriptorsTotal: Number(h['Descriptors Total']),
      descriptorsOffset: Number(h['Descriptors Offset']),
      descriptorsSize: Number(h['Descriptors Total']) * 585,
      dataOffset: Number(h['Data Offset']),
      dataSize: bytes.length - Number(h['Data Offset']),
    });
    expect(asApptainerTime(info.header.created)).toBe(h['Created At']);
    expect(asApptainerTime(info.header.modified)).toBe(h['Modified At']);
  });

  test('descriptors match `apptainer sif list` and `sif info`', () => {
    const rows = listRows(recorded.sifList);
    expect(
      info.descriptors.map((d) => ({
        id: d.id, group: orNone(d.groupId), link: orNone(d.linkedId),
        start: d.offset, end: d.offset + d.size, type: typeColumn(d),
      })),
      // sif list also shows a signature's hash ("Signature (SHA-256)"), which SifDescriptor does not carry.
    ).toEqual(rows.map((r) => ({ ...r, type: r.type.replace(/^Signature \(.*\)$/, 'Signature') })));
    for (const d of info.descriptors) {
      const f = fields(recorded.sifInfo[String(d.id)]!);
      expect({ name: d.name, created: asApptainerTime(d.created), offset: d.offset, size: d.size })
        .toEqual({ name: f['Name'] ?? '', created: f['Created At'], offset: Number(f['Offset']), size: Number(f['Size']) });
    }
    expect(info.descriptors.find((d) => d.name === 'inspect-metadata.json')?.type).toBe('JSON.Generic');
  });

  test('reads only the header, descriptor table, small metadata and the squashfs superblock', () => {
    const def = info.descriptors.find((d) => d.type === 'Def.FILE')!;
    const meta = info.descriptors.find((d) => d.name === 'inspect-metadata.json')!;
    const needed: Array<[number, number]> = [
      [0, 128],
      [info.header.descriptorsOffset, info.header.descriptorsTotal * 585],
      [def.offset, def.size],
      [meta.offset, meta.size],
      [info.primary!.offset, 96],
    ];
    expect([...reads].sort((a, b) => a[0] - b[0])).toEqual(needed);
    const total = needed.reduce((sum, [, length]) => sum + length, 0);
    expect(info.bytesRead).toBe(total);
    expect(info.bytesRead).toBeLessThan(64 * 1024 + def.size + meta.size);
  });
});

describe('labels', () => {
  const { bytes, recorded } = load('busybox-gzip');
  const [, meta] = listRows(recorded.sifList);

  test('are empty, not an error, when the image has no inspect-metadata.json object', async () => {
    const b = bytes.slice();
    b[slot(1) + 73] = 'X'.charCodeAt(0); // rename the object, as if an older builder had written the image
    const info = await readSif(memory(b).source);
    expect(info.labels).toEqual({});
    expect(info.descriptors.map((d) => d.name)).toContain('Xnspect-metadata.json');
  });

  test('keep a label called __proto__ as a label', async () => {
    const b = bytes.slice();
    const json = new TextDecoder().decode(b.subarray(meta!.start, meta!.end));
    const edited = json.replace('"Version":"1.2.3"', '"__proto__":"1.2"');
    expect(edited.length).toBe(json.length);
    b.set(new TextEncoder().encode(edited), meta!.start);
    const { labels } = await readSif(memory(b).source);
    expect(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value).toBe('1.2');
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
  });
});

describe('reading from a file', () => {
  test('readSifFile reads a fixture and openFile counts the same bytes readSif does', async () => {
    const path = `${fixtures}busybox-gzip.sif`;
    const info = await readSifFile(path);
    expect(info.labels['Author']).toBe('build-image tests');
    const source = await openFile(path);
    try {
      const again = await readSif(source);
      expect(source.bytesRead).toBe(again.bytesRead);
      expect(source.size).toBe(readFileSync(path).length);
      // A megabyte image costs about 30 KiB to inspect.
      expect(again.bytesRead).toBeLessThan(source.size! / 30);
    } finally {
      await source.close();
    }
  });

  test('openFile returns fewer bytes at the end of the file instead of padding', async () => {
    const source = await openFile(`${fixtures}small-xz.sif`);
    try {
      expect((await source.read(source.size! - 10, 100)).length).toBe(10);
      expect((await source.read(source.size! + 10, 100)).length).toBe(0);
      // A huge length past the end allocates nothing.
      expect((await source.read(0, Number.MAX_SAFE_INTEGER)).length).toBe(source.size);
    } finally {
      await source.close();
    }
  });

  test('readSifFile names the file when it is not a SIF', async () => {
    const path = `${fixtures}small.def`;
    await expect(readSifFile(path)).rejects.toThrow(`${path}: not a SIF file: `);
  });
});

describe('when the source does not know its size (as over some SFTP servers)', () => {
  const { bytes, recorded } = load('busybox-gzip');
  const [def, meta, fs] = listRows(recorded.sifList);

  test('it still parses, paying one extra byte to check the image is all there', async () => {
    const { source } = memory(bytes, { withSize: false });
    const info = await readSif(source);
    expect(info.labels).toEqual(recorded.inspectJson.data.attributes.labels);
    const { source: sized } = memory(bytes);
    expect(info.bytesRead).toBe((await readSif(sized)).bytesRead + 1);
  });

  test.each([
    [100, 'the global header needs bytes 0-128 but the file ends at byte 100'],
    [5000, 'the descriptor table (48 descriptors) needs bytes 4096-32176 but the file ends at byte 5000'],
    [def!.start + 50, `descriptor 1 (Def.FILE) needs bytes ${def!.start}-${def!.end} but the file ends at byte ${def!.start + 50}`],
    [meta!.end - 1, `descriptor 2 (JSON.Generic "inspect-metadata.json") needs bytes ${meta!.start}-${meta!.end} but the file ends`],
    [fs!.start + 36, `the squashfs superblock of the primary partition (descriptor 3) needs bytes ${fs!.start}-${fs!.start + 96} but`],
    [500_000, `the end of the data section needs bytes ${bytes.length - 1}-${bytes.length} but the file ends at or before byte ${bytes.length - 1}`],
  ])('a file cut at byte %d is reported as truncated', async (at, message) => {
    const err = await formatError(bytes.slice(0, at), { withSize: false });
    expect(err.message).toMatch(/^not a SIF file: .*\(truncated\?\)$/);
    expect(err.message).toContain(message);
  });
});

describe('what is not a SIF file', () => {
  const { bytes, recorded } = load('busybox-gzip');
  const [, meta] = listRows(recorded.sifList);
  const metaSize = meta!.end - meta!.start;
  const copy = () => bytes.slice();

  test.each([0, 64, 127])('a %d-byte file is too short for the header', async (length) => {
    const err = await formatError(bytes.slice(0, length));
    expect(err.message).toBe(
      `not a SIF file: the global header needs bytes 0-128 but the file is ${length} bytes (truncated?)`,
    );
  });

  test.each([128, 4096, 32176, 36900, bytes.length - 1])('a file truncated to %d bytes is caught from the header', async (length) => {
    const err = await formatError(bytes.slice(0, length));
    expect(err.message).toBe(
      `not a SIF file: the header says data runs to byte ${bytes.length} but the file is ${length} bytes (truncated?)`,
    );
  });

  test('a wrong magic', async () => {
    const b = copy();
    b[32] = 'X'.charCodeAt(0);
    const err = await formatError(b);
    expect(err.message).toBe(
      'not a SIF file: bytes 32-41 should hold the magic "SIF_MAGIC", found "XIF_MAGIC." (hex 5849465f4d4147494300)',
    );
  });

  test('a newer SIF version', async () => {
    const b = copy();
    b[43] = '2'.charCodeAt(0);
    expect((await formatError(b)).message).toMatch(/SIF version 02 is newer than this reader understands/);
  });

  test('a descriptor pointing past the end of the file', async () => {
    const b = copy();
    patch64(b, slot(1) + 17, BigInt(bytes.length + 1000)); // inspect-metadata.json's offset
    expect((await formatError(b)).message).toBe(
      `not a SIF file: descriptor 2 (JSON.Generic) points at bytes ${bytes.length + 1000}-${bytes.length + 1000 + metaSize}, ` +
        `outside the data section (bytes 32176-${bytes.length})`,
    );
  });

  test('a descriptor whose size runs past the end, even when the source has no size', async () => {
    const b = copy();
    patch64(b, slot(2) + 25, BigInt(bytes.length)); // the squashfs partition's size
    expect((await formatError(b, { withSize: false })).message).toMatch(
      /descriptor 3 \(FS\) points at bytes 36864-1118208, outside the data section/,
    );
  });

  test('a huge descriptor count is refused before anything is allocated or read', async () => {
    const b = copy();
    patch64(b, 88, 1_000_000_000n);
    const { source, reads } = memory(b);
    await expect(readSif(source)).rejects.toThrow(
      'not a SIF file: the header claims 1000000000 descriptors; more than 1024 is not a plausible SIF',
    );
    expect(reads).toEqual([[0, 128]]);
  });

  test('a negative or absurd 64-bit field', async () => {
    const b = copy();
    patch64(b, 120, -5n);
    expect((await formatError(b)).message).toBe('not a SIF file: header field dataSize is -5, out of range');
  });

  test('a descriptor count that disagrees with the header', async () => {
    const b = copy();
    patch64(b, 80, 44n);
    expect((await formatError(b)).message).toBe(
      'not a SIF file: the header says 4 descriptors are in use (48 total, 44 free) but the table has 3',
    );
  });

  test('two primary partitions', async () => {
    const b = copy();
    b.copyWithin(slot(3), slot(2), slot(3)); // duplicate the FS descriptor into a free slot
    patch32(b, slot(3) + 5, 4);
    patch64(b, 80, 44n);
    expect((await formatError(b)).message).toBe(
      'not a SIF file: descriptors 3, 4 all claim to be the primary system partition',
    );
  });

  test('two descriptors with one ID', async () => {
    const b = copy();
    patch32(b, slot(1) + 5, 1);
    expect((await formatError(b)).message).toBe('not a SIF file: two descriptors share ID 1');
  });

  test('a primary squashfs partition that is not squashfs', async () => {
    const b = copy();
    b.fill(0, 36864, 36868);
    expect((await formatError(b)).message).toBe(
      'not a SIF file: the primary partition (descriptor 3) is marked Squashfs but starts with "...." (hex 00000000), not "hsqs"',
    );
  });

  test('inspect metadata that is not JSON', async () => {
    const b = copy();
    b[meta!.start] = 'x'.charCodeAt(0);
    expect((await formatError(b)).message).toMatch(
      /^not a SIF file: descriptor 2 \("inspect-metadata.json"\) is not valid JSON: /,
    );
  });

  test('labels whose values are not strings', async () => {
    const b = copy();
    const json = new TextDecoder().decode(b.subarray(meta!.start, meta!.end));
    const edited = json.replace('"Author":"build-image tests"', '"Author":["build-image"]'.padEnd(28));
    expect(edited.length).toBe(json.length);
    b.set(new TextEncoder().encode(edited), meta!.start);
    expect((await formatError(b)).message).toBe(
      'not a SIF file: descriptor 2 ("inspect-metadata.json") has a label "Author" whose value is not a string',
    );
  });

  test('metadata larger than the limit is refused without reading it', async () => {
    const { source, reads } = memory(bytes);
    await expect(readSif(source, { maxMetadataBytes: 1000 })).rejects.toThrow(
      `SIF metadata too large: descriptor 2 (JSON.Generic "inspect-metadata.json") is ${metaSize} bytes, over the 1000-byte limit`,
    );
    expect(reads.some(([offset]) => offset === meta!.start)).toBe(false);
  });

  test.each([1, 127, 128, 4096, 65536])('%d random bytes', async (length) => {
    const random = prng(length);
    const b = Uint8Array.from({ length }, () => Math.floor(random() * 256));
    expect((await formatError(b)).message).toMatch(/^not a SIF file: /);
  });

  test('random bytes behind a valid magic', async () => {
    const random = prng(7);
    const b = Uint8Array.from({ length: 40_000 }, () => Math.floor(random() * 256));
    b.set(bytes.subarray(0, 48));
    expect((await formatError(b)).message).toMatch(/^not a SIF file: /);
  });

  test('corrupting header and descriptor bytes never escapes as anything but SifFormatError', async () => {
    const { bytes: small } = load('small-xz');
    const random = prng(42);
    for (let round = 0; round < 300; round++) {
      const b = small.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let i = 0; i < flips; i++) {
        // Aim at the header and the three used descriptors, where the structure lives.
        const at = random() < 0.3 ? Math.floor(random() * 128) : slot(0) + Math.floor(random() * 3 * 585);
        b[at] = Math.floor(random() * 256);
      }
      for (const withSize of [true, false]) {
        const { source } = memory(b, { withSize });
        await readSif(source).catch((err: unknown) => {
          if (!(err instanceof SifFormatError)) throw new Error(`round ${round}: ${String(err)}`);
        });
      }
    }
  });
});
