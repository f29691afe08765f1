/**
 * zTOC <-> FlatBuffers (schema: ztoc/ztoc.fbs). Encoding follows the upstream writer's
 * construction order (strings before their table, entries built last-to-first, every string
 * field written even when empty, scalars at their default omitted) so the output has the same
 * shape as upstream's; decoding goes through FbReader, which bounds-checks every access.
 */
import { Builder } from 'flatbuffers';
import { SociError, invalidArgument } from '../errors/errors.js';
import { FbReader, type FbTable } from './fb-reader.js';
import type { CompressionAlgorithm, EntryType, FileMetadata, Xattr, Ztoc } from './types.js';
import { decodeZinfo } from './zinfo.js';
import { validateZtoc } from './ztoc-validate.js';

const ALGORITHM_CODES: Record<CompressionAlgorithm, number> = { gzip: 1, uncompressed: 2 };
const ENTRY_TYPES: ReadonlySet<string> = new Set(['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo']);
const utf8 = new TextEncoder();
/** Reused UTF-8 scratch: encoding each of ~150,000 strings into a fresh array made GC dominate. */
let scratch = new Uint8Array(4096);

function createString(b: Builder, s: string): number {
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(s.length * 3);
  const { written } = utf8.encodeInto(s, scratch);
  return b.createString(scratch.subarray(0, written));
}

/** Encodes a zTOC after validating it, so this module never writes one it would refuse to read. */
export function encodeZtoc(z: Ztoc): Uint8Array {
  validateZtoc(z, decodeZinfo(z));
  return encodeZtocUnchecked(z);
}

/** Encodes without validation; for tests and tools that need to produce malformed zTOCs. */
export function encodeZtocUnchecked(z: Ztoc): Uint8Array {
  const b = new Builder(1024 + z.zinfoBlob.length + z.toc.length * 256);
  const version = createString(b, z.version);
  const tool = createString(b, z.buildToolIdentifier);
  const toc = writeToc(b, z.toc);
  const info = writeCompressionInfo(b, z);
  b.startObject(6);
  b.addFieldOffset(0, version, 0);
  b.addFieldOffset(1, tool, 0);
  b.addFieldOffset(4, toc, 0);
  b.addFieldInt64(2, int64(z.compressedArchiveSize, 'compressed_archive_size'), 0n);
  b.addFieldInt64(3, int64(z.uncompressedArchiveSize, 'uncompressed_archive_size'), 0n);
  b.addFieldOffset(5, info, 0);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

function int64(v: number, what: string): bigint {
  if (v === 0) return 0n;
  if (!Number.isSafeInteger(v)) throw invalidArgument(`ztoc: ${what} ${v} is not a safe integer`);
  return BigInt(v);
}

function offsetVector(b: Builder, offsets: number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

function writeToc(b: Builder, toc: FileMetadata[]): number {
  const entries = new Array<number>(toc.length);
  for (let i = toc.length - 1; i >= 0; i--) entries[i] = writeEntry(b, toc[i]);
  const metadata = offsetVector(b, entries);
  b.startObject(1);
  b.addFieldOffset(0, metadata, 0);
  return b.endObject();
}

function writeEntry(b: Builder, f: FileMetadata): number {
  const name = createString(b, f.name);
  const type = createString(b, f.type);
  const linkname = createString(b, f.linkname);
  const uname = createString(b, f.uname);
  const gname = createString(b, f.gname);
  const modTime = createString(b, f.modTime);
  const xattrs = writeXattrs(b, f.xattrs);
  b.startObject(14);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(1, type, 0);
  b.addFieldInt64(2, int64(f.uncompressedOffset, 'entry uncompressed_offset'), 0n);
  b.addFieldInt64(3, int64(f.uncompressedSize, 'entry uncompressed_size'), 0n);
  b.addFieldOffset(4, linkname, 0);
  b.addFieldInt64(5, int64(f.mode, 'entry mode'), 0n);
  b.addFieldInt32(6, f.uid | 0, 0);
  b.addFieldInt32(7, f.gid | 0, 0);
  b.addFieldOffset(8, uname, 0);
  b.addFieldOffset(9, gname, 0);
  b.addFieldOffset(10, modTime, 0);
  b.addFieldInt64(11, int64(f.devmajor, 'entry devmajor'), 0n);
  b.addFieldInt64(12, int64(f.devminor, 'entry devminor'), 0n);
  b.addFieldOffset(13, xattrs, 0);
  return b.endObject();
}

/**
 * Byte-wise UTF-8 key order, as Go's sort.Strings, so output does not depend on input order.
 * UTF-16 code-unit order agrees with it unless a surrogate is involved.
 */
const NON_BMP_OR_HIGH = /[\ud800-\uffff]/;
function compareKeys(a: Xattr, b: Xattr): number {
  if (NON_BMP_OR_HIGH.test(a.key) || NON_BMP_OR_HIGH.test(b.key)) return Buffer.compare(utf8.encode(a.key), utf8.encode(b.key));
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function writeXattrs(b: Builder, xattrs: Xattr[]): number {
  const sorted = xattrs.length > 1 ? [...xattrs].sort(compareKeys) : xattrs;
  const offsets = sorted.map((x) => {
    const key = createString(b, x.key);
    const value = b.createString(x.value);
    b.startObject(2);
    b.addFieldOffset(0, key, 0);
    b.addFieldOffset(1, value, 0);
    return b.endObject();
  });
  return offsetVector(b, offsets);
}

function writeCompressionInfo(b: Builder, z: Ztoc): number {
  const checkpoints = b.createByteVector(z.zinfoBlob);
  const digests = offsetVector(
    b,
    z.spanDigests.map((d) => createString(b, d)),
  );
  const code = ALGORITHM_CODES[z.compressionAlgorithm];
  if (code === undefined) throw invalidArgument(`ztoc: unknown compression algorithm ${String(z.compressionAlgorithm)}`);
  b.startObject(4);
  b.addFieldInt32(1, z.maxSpanId | 0, 0);
  b.addFieldOffset(2, digests, 0);
  b.addFieldOffset(3, checkpoints, 0);
  b.addFieldInt8(0, code, 1);
  return b.endObject();
}

export interface DecodeZtocOptions {
  /**
   * The zinfo blob (most of a zTOC: a 32 KiB window per span) stays a view into the input
   * instead of a copy, so the result pins the input. For callers that keep the checkpoints as
   * long as the input anyway: copying fresh memory costs more here than decoding the rest
   * (66 MB of windows: ~60 ms a pull on an idle machine, more on a busy one).
   */
  viewZinfo?: boolean;
}

/** Decodes and validates a zTOC. Trailing bytes after the FlatBuffer are ignored. */
export function decodeZtoc(buf: Uint8Array, opts: DecodeZtocOptions = {}): Ztoc {
  const z = readZtoc(new FbReader('ztoc', buf), opts.viewZinfo === true);
  validateZtoc(z, decodeZinfo(z));
  return z;
}

function readZtoc(r: FbReader, viewZinfo: boolean): Ztoc {
  const root = r.root('root table');
  const version = r.stringField(root, 0, 'version');
  if (version === null) r.fail('version is not a string (field absent)');
  const toc = r.tableField(root, 4, 'toc');
  const info = r.tableField(root, 5, 'compression_info');
  if (info === null) r.fail('compression_info is absent');
  return {
    version,
    buildToolIdentifier: r.stringField(root, 1, 'build_tool_identifier') ?? '',
    compressedArchiveSize: r.safeInt64(root, 2, 'compressed_archive_size'),
    uncompressedArchiveSize: r.safeInt64(root, 3, 'uncompressed_archive_size'),
    toc: toc === null ? [] : readEntries(r, toc),
    ...readCompressionInfo(r, info, viewZinfo),
  };
}

type CompressionFields = Pick<Ztoc, 'compressionAlgorithm' | 'maxSpanId' | 'spanDigests' | 'zinfoBlob'>;

function readCompressionInfo(r: FbReader, t: FbTable, viewZinfo: boolean): CompressionFields {
  const code = r.int8(t, 0, 1, 'compression_algorithm');
  const algorithm = code === 1 ? 'gzip' : code === 2 ? 'uncompressed' : null;
  if (algorithm === null) r.fail(`compression_algorithm ${code} is not Gzip(1) or Uncompressed(2)`);
  const maxSpanId = r.int32(t, 1, 'max_span_id');
  const digests = r.vector(t, 2, 4, 'span_digests');
  const spanDigests = new Array<string>(digests.length);
  for (let i = 0; i < digests.length; i++) spanDigests[i] = r.vectorString(digests, i, `span digest ${i}`);
  const zinfoView = r.vectorBytes(r.vector(t, 3, 1, 'checkpoints'));
  // By default a copy, so holding the zTOC does not pin the (possibly larger) buffer it came from.
  const zinfoBlob = viewZinfo ? zinfoView : zinfoView.slice();
  return { compressionAlgorithm: algorithm, maxSpanId, spanDigests, zinfoBlob };
}

function readEntries(r: FbReader, toc: FbTable): FileMetadata[] {
  const v = r.vector(toc, 0, 4, 'toc metadata');
  const out = new Array<FileMetadata>(v.length);
  for (let i = 0; i < v.length; i++) {
    try {
      out[i] = readEntry(r, r.vectorTable(v, i, 'table'));
    } catch (err) {
      // Field names are constants on the hot path; the entry index is added only on failure.
      if (err instanceof SociError) throw invalidArgument(err.message.replace(/^ztoc: /, `ztoc: entry ${i} `));
      throw err;
    }
  }
  return out;
}

function readEntry(r: FbReader, t: FbTable): FileMetadata {
  const type = r.stringField(t, 1, 'type') ?? '';
  if (!ENTRY_TYPES.has(type)) r.fail(`has unknown type ${JSON.stringify(type)}`);
  return {
    name: r.stringField(t, 0, 'name') ?? '',
    type: type as EntryType,
    uncompressedOffset: r.safeInt64(t, 2, 'uncompressed_offset'),
    uncompressedSize: r.safeInt64(t, 3, 'uncompressed_size'),
    linkname: r.stringField(t, 4, 'linkname') ?? '',
    mode: r.safeInt64(t, 5, 'mode'),
    uid: r.uint32(t, 6, 'uid'),
    gid: r.uint32(t, 7, 'gid'),
    uname: r.stringField(t, 8, 'uname') ?? '',
    gname: r.stringField(t, 9, 'gname') ?? '',
    modTime: r.stringField(t, 10, 'mod_time') ?? '',
    devmajor: r.safeInt64(t, 11, 'devmajor'),
    devminor: r.safeInt64(t, 12, 'devminor'),
    xattrs: readXattrs(r, t),
  };
}

function readXattrs(r: FbReader, t: FbTable): Xattr[] {
  const v = r.vector(t, 13, 4, 'xattrs');
  const out = new Array<Xattr>(v.length);
  for (let j = 0; j < v.length; j++) {
    const x = r.vectorTable(v, j, 'xattr');
    out[j] = { key: r.stringField(x, 0, 'xattr key') ?? '', value: r.bytesField(x, 1, 'xattr value') ?? new Uint8Array(0) };
  }
  return out;
}
