// Reads what a SIF (Singularity Image Format) file says about itself — header, descriptor table,
// definition, labels, primary partition — from a few KiB, so a remote image can be inspected over SFTP.
//
// Layout (apptainer/sif, little-endian): a 128-byte global header at 0, a table of fixed 585-byte
// descriptors, then the data objects those descriptors point at. apptainer 1.4.5 keeps the labels that
// `apptainer inspect` prints in a JSON.Generic object named "inspect-metadata.json" (a copy of
// /.singularity.d/labels.json inside the squashfs), so nothing here has to open the filesystem. The layout
// itself (offsets, type codes, apptainer's names) is in sif-layout.ts.

import { open } from 'node:fs/promises';
import {
  checkHeaderLayout, DATA_DEFFILE, DATA_PARTITION, DEFAULT_MAX_METADATA_BYTES, DESCRIPTOR_SIZE, FS_SQUASHFS, HEADER_SIZE,
  INSPECT_METADATA, notSif, parseDescriptors, quoteBytes, parseHeader, PART_PRIMARY_SYSTEM, SifFormatError, SIF_FS_TYPES, SIF_PART_TYPES,
  SQUASHFS_COMPRESSION, SQUASHFS_MAGIC, SQUASHFS_SUPERBLOCK_SIZE, type SifDescriptor, type SifHeader, type SquashfsCompression,
} from './sif-layout.js';

export { SifFormatError, SIF_DATA_TYPES, SIF_FS_TYPES, SIF_PART_TYPES } from './sif-layout.js';
export type { SifDescriptor, SifHeader, SquashfsCompression } from './sif-layout.js';

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
