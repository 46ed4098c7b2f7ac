// Reads what a SIF (Singularity Image Format) file says about itself — header, descriptor table,
// definition, labels, primary partition — from a few KiB, so a remote image can be inspected over SFTP.
//
// Layout (apptainer/sif, little-endian): a 128-byte global header at 0, a table of fixed 585-byte
// descriptors, then the data objects those descriptors point at. apptainer 1.4.5 keeps the labels that
// `apptainer inspect` prints in a JSON.Generic object named "inspect-metadata.json" (a copy of
// /.singularity.d/labels.json inside the squashfs), so nothing here has to open the filesystem.

import { open } from 'node:fs/promises';
import { UserError } from '../user-error.js';

export interface ByteSource {
  /** Resolves to `length` bytes at `offset`, or fewer if the source ends first. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Total size when known; lets the reader refuse out-of-range offsets before asking for them. */
  size?: number;
}

export interface FileByteSource extends ByteSource {
  close(): Promise<void>;
  /** Bytes handed out by read() so far. */
  readonly bytesRead: number;
}

export class SifFormatError extends UserError {
  override name = 'SifFormatError';
}

export interface SifHeader {
  launch: string;
  magic: string;
  version: string;
  arch: string;
  id: string;
  created: Date;
  modified: Date;
  descriptorsFree: number;
  descriptorsTotal: number;
  descriptorsOffset: number;
  descriptorsSize: number;
  dataOffset: number;
  dataSize: number;
}

export interface SifDescriptor {
  id: number;
  /** 0 when the object is in no group (`sif list` prints NONE). */
  groupId: number;
  /** 0 when unlinked; a signature links to a group ID, other objects to an object ID. */
  linkedId: number;
  /** As `apptainer sif list` prints it: a value of SIF_DATA_TYPES, or 'Unknown' (see typeCode). */
  type: string;
  typeCode: number;
  offset: number;
  size: number;
  name: string;
  created: Date;
  uid?: number;
  gid?: number;
  /** Only on FS objects; names from SIF_FS_TYPES and SIF_PART_TYPES ('*System' is the primary). */
  partition?: { fsType: string; partType: string; arch: string };
}

export type SquashfsCompression = 'gzip' | 'lzma' | 'lzo' | 'xz' | 'lz4' | 'zstd' | 'unknown';

export interface SifInfo {
  header: SifHeader;
  /** The used descriptors, in table order. */
  descriptors: SifDescriptor[];
  /** The first Def.FILE object: the definition the image was built from, byte for byte. */
  definition?: string;
  /**
   * What `apptainer inspect` shows, from the "inspect-metadata.json" object. Empty when the image has
   * no such object (images from before apptainer/singularity started writing it keep labels only in
   * the squashfs, which this reader does not open).
   */
  labels: Record<string, string>;
  /** The primary system partition, with its squashfs compression when it is squashfs. */
  primary?: {
    descriptorId: number;
    fsType: string;
    arch: string;
    offset: number;
    size: number;
    compression?: SquashfsCompression;
  };
  /** Everything read from the source, to show that inspecting a remote image stays cheap. */
  bytesRead: number;
}

export interface ReadSifOptions {
  /** Refuse Def.FILE / inspect-metadata objects larger than this (default 1 MiB). */
  maxMetadataBytes?: number;
}

// Names exactly as `apptainer sif list` / `sif info` print them, so messages and logs match apptainer's.
export const SIF_DATA_TYPES: Readonly<Record<number, string>> = {
  0x4001: 'Def.FILE',
  0x4002: 'Env.Vars',
  0x4003: 'JSON.Labels',
  0x4004: 'FS',
  0x4005: 'Signature',
  0x4006: 'JSON.Generic',
  0x4007: 'Generic/Raw',
  0x4008: 'Cryptographic Message',
  0x4009: 'SBOM',
  0x400a: 'OCI.RootIndex',
  0x400b: 'OCI.Blob',
};
export const SIF_FS_TYPES: Readonly<Record<number, string>> = {
  1: 'Squashfs',
  2: 'Ext3',
  3: 'Archive',
  4: 'Raw',
  5: 'Encrypted squashfs',
  6: 'Gocryptfs squashfs',
};
export const SIF_PART_TYPES: Readonly<Record<number, string>> = {
  1: 'System',
  2: '*System', // the primary system partition; apptainer marks it with the star
  3: 'Data',
  4: 'Overlay',
};
// The header and partition descriptors store a two-digit code; these are the Go arch names apptainer prints.
const ARCHES: Readonly<Record<string, string>> = {
  '01': '386',
  '02': 'amd64',
  '03': 'arm',
  '04': 'arm64',
  '05': 'ppc64',
  '06': 'ppc64le',
  '07': 'mips',
  '08': 'mipsle',
  '09': 'mips64',
  '10': 'mips64le',
  '11': 's390x',
  '12': 'riscv64',
};
const SQUASHFS_COMPRESSION: Readonly<Record<number, SquashfsCompression>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

const HEADER_SIZE = 128;
const DESCRIPTOR_SIZE = 585;
// apptainer creates 48; a table far larger than this is corruption, and reading it would cost real bytes.
const MAX_DESCRIPTORS = 1024;
const SUPPORTED_VERSION = 1;
const DATA_DEFFILE = 0x4001;
const DATA_PARTITION = 0x4004;
const PART_PRIMARY_SYSTEM = 2;
const FS_SQUASHFS = 1;
const GROUP_MASK = 0xf0000000;
const INSPECT_METADATA = 'inspect-metadata.json';
const SQUASHFS_SUPERBLOCK_SIZE = 96;
const SQUASHFS_MAGIC = 0x73717368; // "hsqs" read little-endian
const DEFAULT_MAX_METADATA_BYTES = 1024 * 1024;

export async function openFile(path: string): Promise<FileByteSource> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  let bytesRead = 0;
  return {
    size,
    get bytesRead() {
      return bytesRead;
    },
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
        throw new RangeError(`cannot read ${length} bytes at offset ${offset} of ${path}`);
      }
      // Never allocate past the end of the file, whatever length a caller asks for.
      const buffer = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead: n } = await handle.read(buffer, filled, buffer.length - filled, offset + filled);
        if (n === 0) break; // the file shrank under us
        filled += n;
      }
      bytesRead += filled;
      return filled === buffer.length ? buffer : buffer.subarray(0, filled);
    },
    close: () => handle.close(),
  };
}

export async function readSifFile(path: string): Promise<SifInfo> {
  const source = await openFile(path);
  try {
    return await readSif(source);
  } catch (err) {
    if (err instanceof SifFormatError) throw new SifFormatError(`${path}: ${err.message}`, { cause: err });
    throw err;
  } finally {
    await source.close();
  }
}

export async function readSif(source: ByteSource, options: ReadSifOptions = {}): Promise<SifInfo> {
  const maxMetadataBytes = options.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const reader = new CountingReader(source);

  const header = parseHeader(await reader.read(0, HEADER_SIZE, 'the global header'));
  checkHeaderLayout(header, source.size);
  const table = await reader.read(
    header.descriptorsOffset,
    header.descriptorsTotal * DESCRIPTOR_SIZE,
    `the descriptor table (${header.descriptorsTotal} descriptors)`,
  );
  const descriptors = parseDescriptors(table, header);

  const primaries = descriptors.filter((d) => d.partition?.partType === SIF_PART_TYPES[PART_PRIMARY_SYSTEM]);
  if (primaries.length > 1) {
    throw notSif(`descriptors ${primaries.map((d) => d.id).join(', ')} all claim to be the primary system partition`);
  }
  const primaryDescriptor = primaries[0];
  // apptainer takes the first definition object, and the metadata object by name among non-partition objects.
  const defDescriptor = descriptors.find((d) => d.typeCode === DATA_DEFFILE);
  const metaDescriptor = descriptors.find((d) => d.typeCode !== DATA_PARTITION && d.name === INSPECT_METADATA);

  // Independent reads go out together: over SFTP each one is a round trip.
  const dataEnd = header.dataOffset + header.dataSize;
  const [definitionBytes, metadataBytes, superblock] = await allInOrder([
    defDescriptor && readObject(reader, defDescriptor, maxMetadataBytes),
    metaDescriptor && readObject(reader, metaDescriptor, maxMetadataBytes),
    primaryDescriptor?.partition?.fsType === SIF_FS_TYPES[FS_SQUASHFS]
      ? readSuperblock(reader, primaryDescriptor)
      : undefined,
    // With no size to compare against, one byte at the declared end is what tells a half-uploaded image apart.
    source.size === undefined && dataEnd > 0
      ? reader.read(dataEnd - 1, 1, 'the end of the data section')
      : undefined,
  ]);

  const primary = primaryDescriptor?.partition && {
    descriptorId: primaryDescriptor.id,
    fsType: primaryDescriptor.partition.fsType,
    arch: primaryDescriptor.partition.arch,
    offset: primaryDescriptor.offset,
    size: primaryDescriptor.size,
    ...(superblock && { compression: superblock.compression }),
  };
  return {
    header,
    descriptors,
    ...(definitionBytes && { definition: new TextDecoder().decode(definitionBytes) }),
    labels: metadataBytes && metaDescriptor ? parseLabels(metadataBytes, metaDescriptor) : {},
    ...(primary && { primary }),
    bytesRead: reader.bytesRead,
  };
}

/**
 * Like Promise.all, but waits for every read and then reports the first failure in list order, so the
 * error a user sees does not depend on which network reply happened to come back first.
 */
async function allInOrder<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

function notSif(detail: string): SifFormatError {
  return new SifFormatError(`not a SIF file: ${detail}`);
}

/** Wraps a ByteSource: counts bytes, refuses ranges past a known end, and turns short reads into errors. */
class CountingReader {
  bytesRead = 0;
  constructor(private readonly source: ByteSource) {}

  async read(offset: number, length: number, what: string): Promise<Uint8Array> {
    const size = this.source.size;
    if (size !== undefined && offset + length > size) {
      throw notSif(`${what} needs bytes ${offset}-${offset + length} but the file is ${size} bytes (truncated?)`);
    }
    const bytes = await this.source.read(offset, length);
    this.bytesRead += bytes.length;
    if (bytes.length < length) {
      // An empty reply only says the file ends somewhere at or before the offset asked for.
      const end = bytes.length > 0 ? `at byte ${offset + bytes.length}` : `at or before byte ${offset}`;
      throw notSif(`${what} needs bytes ${offset}-${offset + length} but the file ends ${end} (truncated?)`);
    }
    return bytes.length === length ? bytes : bytes.subarray(0, length);
  }
}

function parseHeader(bytes: Uint8Array): SifHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.subarray(32, 42);
  if (cString(magic) !== 'SIF_MAGIC' || magic[9] !== 0) {
    throw notSif(`bytes 32-41 should hold the magic "SIF_MAGIC", found ${quoteBytes(magic)}`);
  }
  const version = cString(bytes.subarray(42, 45));
  if (!/^\d{2}$/.test(version)) throw notSif(`the SIF version field holds ${quoteBytes(bytes.subarray(42, 45))}, not two digits`);
  if (Number(version) > SUPPORTED_VERSION) {
    throw notSif(`SIF version ${version} is newer than this reader understands (up to 0${SUPPORTED_VERSION})`);
  }
  const int = (at: number, field: string) => int64(view, at, `header field ${field}`);
  return {
    launch: cString(bytes.subarray(0, 32)),
    magic: 'SIF_MAGIC',
    version,
    arch: archName(bytes.subarray(45, 48)),
    id: uuid(bytes.subarray(48, 64)),
    created: time(int(64, 'created'), 'header field created'),
    modified: time(int(72, 'modified'), 'header field modified'),
    descriptorsFree: int(80, 'descriptorsFree'),
    descriptorsTotal: int(88, 'descriptorsTotal'),
    descriptorsOffset: int(96, 'descriptorsOffset'),
    descriptorsSize: int(104, 'descriptorsSize'),
    dataOffset: int(112, 'dataOffset'),
    dataSize: int(120, 'dataSize'),
  };
}

// Everything here is checked before the table is read, so a corrupt count never turns into a huge read.
function checkHeaderLayout(h: SifHeader, size: number | undefined): void {
  if (h.descriptorsTotal < 1) throw notSif('the header says the descriptor table holds no descriptors');
  if (h.descriptorsTotal > MAX_DESCRIPTORS) {
    throw notSif(`the header claims ${h.descriptorsTotal} descriptors; more than ${MAX_DESCRIPTORS} is not a plausible SIF`);
  }
  if (h.descriptorsFree > h.descriptorsTotal) {
    throw notSif(`the header says ${h.descriptorsFree} of ${h.descriptorsTotal} descriptors are free`);
  }
  const tableBytes = h.descriptorsTotal * DESCRIPTOR_SIZE;
  if (h.descriptorsSize < tableBytes) {
    throw notSif(`the descriptor table is ${h.descriptorsSize} bytes, too small for ${h.descriptorsTotal} descriptors of ${DESCRIPTOR_SIZE} bytes`);
  }
  if (h.descriptorsOffset < HEADER_SIZE) {
    throw notSif(`the descriptor table starts at byte ${h.descriptorsOffset}, inside the ${HEADER_SIZE}-byte header`);
  }
  if (h.descriptorsOffset + tableBytes > h.dataOffset) {
    throw notSif(`the descriptor table (bytes ${h.descriptorsOffset}-${h.descriptorsOffset + tableBytes}) overlaps the data section at byte ${h.dataOffset}`);
  }
  const dataEnd = h.dataOffset + h.dataSize;
  if (!Number.isSafeInteger(dataEnd)) throw notSif(`the data section end (${h.dataOffset} + ${h.dataSize}) is out of range`);
  if (size !== undefined && dataEnd > size) {
    throw notSif(`the header says data runs to byte ${dataEnd} but the file is ${size} bytes (truncated?)`);
  }
}

function parseDescriptors(table: Uint8Array, h: SifHeader): SifDescriptor[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const dataEnd = h.dataOffset + h.dataSize;
  const descriptors: SifDescriptor[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < h.descriptorsTotal; i++) {
    const at = i * DESCRIPTOR_SIZE;
    if (table[at + 4] === 0) continue; // the "used" flag: free slots carry nothing
    const slot = `descriptor slot ${i}`;
    const typeCode = view.getInt32(at, true);
    const id = view.getUint32(at + 5, true);
    if (id === 0) throw notSif(`${slot} is marked in use but has ID 0`);
    if (seen.has(id)) throw notSif(`two descriptors share ID ${id}`);
    seen.add(id);
    const what = `descriptor ${id}`;
    const offset = int64(view, at + 17, `${what} offset`);
    const size = int64(view, at + 25, `${what} size`);
    if (offset < h.dataOffset || offset + size > dataEnd) {
      throw notSif(`${what} (${SIF_DATA_TYPES[typeCode] ?? 'Unknown'}) points at bytes ${offset}-${offset + size}, ` +
        `outside the data section (bytes ${h.dataOffset}-${dataEnd})`);
    }
    const descriptor: SifDescriptor = {
      id,
      groupId: view.getUint32(at + 9, true) & ~GROUP_MASK,
      linkedId: view.getUint32(at + 13, true) & ~GROUP_MASK,
      type: SIF_DATA_TYPES[typeCode] ?? 'Unknown',
      typeCode,
      offset,
      size,
      name: cString(table.subarray(at + 73, at + 201)),
      created: time(int64(view, at + 41, `${what} created`), `${what} created`),
    };
    // Deprecated, always 0 from apptainer; kept when they decode to something sensible.
    const uid = view.getBigInt64(at + 57, true);
    const gid = view.getBigInt64(at + 65, true);
    if (uid >= 0n && uid <= 0xffffffffn) descriptor.uid = Number(uid);
    if (gid >= 0n && gid <= 0xffffffffn) descriptor.gid = Number(gid);
    if (typeCode === DATA_PARTITION) {
      const extra = at + 201;
      descriptor.partition = {
        fsType: SIF_FS_TYPES[view.getInt32(extra, true)] ?? 'Unknown',
        partType: SIF_PART_TYPES[view.getInt32(extra + 4, true)] ?? 'Unknown',
        arch: archName(table.subarray(extra + 8, extra + 11)),
      };
    }
    descriptors.push(descriptor);
  }
  if (descriptors.length !== h.descriptorsTotal - h.descriptorsFree) {
    throw notSif(`the header says ${h.descriptorsTotal - h.descriptorsFree} descriptors are in use ` +
      `(${h.descriptorsTotal} total, ${h.descriptorsFree} free) but the table has ${descriptors.length}`);
  }
  return descriptors;
}

async function readObject(reader: CountingReader, d: SifDescriptor, limit: number): Promise<Uint8Array> {
  const what = d.name ? `descriptor ${d.id} (${d.type} "${d.name}")` : `descriptor ${d.id} (${d.type})`;
  if (d.size > limit) {
    throw new SifFormatError(`SIF metadata too large: ${what} is ${d.size} bytes, over the ${limit}-byte limit`);
  }
  return reader.read(d.offset, d.size, what);
}

function parseLabels(bytes: Uint8Array, d: SifDescriptor): Record<string, string> {
  const what = `descriptor ${d.id} ("${d.name}")`;
  let metadata: unknown;
  try {
    metadata = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw notSif(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  // apptainer's shape: {"data":{"attributes":{"labels":{...},...}},"type":"container"}
  const labels = (metadata as { data?: { attributes?: { labels?: unknown } } } | null)?.data?.attributes?.labels;
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) throw notSif(`${what} has data.attributes.labels that is not an object`);
  const entries = Object.entries(labels);
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw notSif(`${what} has a label "${key}" whose value is not a string`);
  }
  // fromEntries defines own properties, so a label named "__proto__" stays a label.
  return Object.fromEntries(entries) as Record<string, string>;
}

async function readSuperblock(reader: CountingReader, d: SifDescriptor): Promise<{ compression: SquashfsCompression }> {
  const what = `the squashfs superblock of the primary partition (descriptor ${d.id})`;
  if (d.size < SQUASHFS_SUPERBLOCK_SIZE) {
    throw notSif(`the primary partition (descriptor ${d.id}) is ${d.size} bytes, too small to hold a squashfs superblock`);
  }
  const bytes = await reader.read(d.offset, SQUASHFS_SUPERBLOCK_SIZE, what);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SQUASHFS_MAGIC) {
    throw notSif(`the primary partition (descriptor ${d.id}) is marked Squashfs but starts with ${quoteBytes(bytes.subarray(0, 4))}, not "hsqs"`);
  }
  const major = view.getUint16(28, true);
  if (major !== 4) throw notSif(`${what} says squashfs version ${major}; apptainer only uses version 4`);
  const bytesUsed = view.getBigUint64(40, true);
  if (bytesUsed > BigInt(d.size)) {
    throw notSif(`${what} says the filesystem is ${bytesUsed} bytes but the partition holds only ${d.size} (truncated?)`);
  }
  return { compression: SQUASHFS_COMPRESSION[view.getUint16(20, true)] ?? 'unknown' };
}

function int64(view: DataView, at: number, what: string): number {
  const value = view.getBigInt64(at, true);
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw notSif(`${what} is ${value}, out of range`);
  return Number(value);
}

function time(seconds: number, what: string): Date {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) throw notSif(`${what} is ${seconds} seconds since 1970, not a date`);
  return date;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

function archName(code: Uint8Array): string {
  return ARCHES[cString(code)] ?? 'unknown';
}

function uuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Shows what was found in an error message without dumping binary junk into a terminal.
function quoteBytes(bytes: Uint8Array): string {
  const printable = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `"${printable}" (hex ${Buffer.from(bytes).toString('hex')})`;
}
