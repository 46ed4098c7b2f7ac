// The SIF file layout (apptainer/sif, little-endian): the 128-byte global header, the 585-byte descriptors,
// their type codes and apptainer's names for them. Pure: sif.ts reads the bytes and calls these.

import { UserError } from '../user-error.js';

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
export const SQUASHFS_COMPRESSION: Readonly<Record<number, SquashfsCompression>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

export const HEADER_SIZE = 128;
export const DESCRIPTOR_SIZE = 585;
// apptainer creates 48; a table far larger than this is corruption, and reading it would cost real bytes.
const MAX_DESCRIPTORS = 1024;
const SUPPORTED_VERSION = 1;
export const DATA_DEFFILE = 0x4001;
export const DATA_PARTITION = 0x4004;
export const PART_PRIMARY_SYSTEM = 2;
export const FS_SQUASHFS = 1;
const GROUP_MASK = 0xf0000000;
export const INSPECT_METADATA = 'inspect-metadata.json';
export const SQUASHFS_SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368; // "hsqs" read little-endian
export const DEFAULT_MAX_METADATA_BYTES = 1024 * 1024;

export function notSif(detail: string): SifFormatError {
  return new SifFormatError(`not a SIF file: ${detail}`);
}

export function parseHeader(bytes: Uint8Array): SifHeader {
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
export function checkHeaderLayout(h: SifHeader, size: number | undefined): void {
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

export function parseDescriptors(table: Uint8Array, h: SifHeader): SifDescriptor[] {
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
export function quoteBytes(bytes: Uint8Array): string {
  const printable = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `"${printable}" (hex ${Buffer.from(bytes).toString('hex')})`;
}
