/**
 * Cross-field checks of a zTOC against its decoded zInfo. A zTOC that passes can be used to
 * compute span ranges and file reads without further bounds checks on its numbers.
 */
import { invalidArgument } from '../errors/errors.js';
import { checkCheckpointOrder, decodeTarZinfo } from './zinfo.js';
import type { FileMetadata, ZInfo, Ztoc } from './types.js';

const ENTRY_TYPES: ReadonlySet<string> = new Set(['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo']);
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const TAR_BLOCK = 512;

const fail = (msg: string): never => {
  throw invalidArgument(`ztoc: ${msg}`);
};

function checkSafe(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} ${String(v)} is not a non-negative safe integer`);
}

export function validateZtoc(z: Ztoc, zinfo: ZInfo): void {
  if (typeof z.version !== 'string' || z.version === '') fail('version is not a non-empty string');
  if (typeof z.buildToolIdentifier !== 'string') fail('build_tool_identifier is not a string');
  checkSafe(z.compressedArchiveSize, 'compressed_archive_size');
  checkSafe(z.uncompressedArchiveSize, 'uncompressed_archive_size');
  const spans = expectedSpanCount(z, zinfo);
  if (!Number.isInteger(z.maxSpanId) || z.maxSpanId < 0) fail(`max_span_id ${z.maxSpanId} is negative`);
  if (z.maxSpanId + 1 !== spans) fail(`max_span_id ${z.maxSpanId} does not match the zinfo's ${spans} spans`);
  if (z.spanDigests.length !== spans) fail(`${z.spanDigests.length} span digests for ${spans} spans`);
  z.spanDigests.forEach((d, i) => {
    if (typeof d !== 'string' || !DIGEST_RE.test(d)) fail(`span digest ${i} ${JSON.stringify(d)} is not sha256:<64 hex>`);
  });
  checkEntries(z.toc, z.uncompressedArchiveSize);
}

function expectedSpanCount(z: Ztoc, zinfo: ZInfo): number {
  if (!Number.isSafeInteger(zinfo.spanSize) || zinfo.spanSize <= 0) fail(`span_size ${zinfo.spanSize} must be positive`);
  if (z.compressionAlgorithm === 'gzip') return gzipSpanCount(z, zinfo);
  if (z.compressionAlgorithm === 'uncompressed') return tarSpanCount(z);
  return fail(`compression_algorithm ${String(z.compressionAlgorithm)} is not gzip or uncompressed`);
}

/**
 * Checkpoint `out` is deliberately not bounded by uncompressed_archive_size: that size ends
 * at the tar end-of-archive marker, and a checkpoint may sit in the record padding after it
 * (GNU tar pads to 10 KiB; pigz ends with empty blocks), so upstream-built zTOCs can have one.
 */
function gzipSpanCount(z: Ztoc, zinfo: ZInfo): number {
  const cps = zinfo.checkpoints;
  if (cps.length === 0) fail('gzip zinfo has no checkpoints');
  cps.forEach((cp, i) => {
    checkSafe(cp.in, `checkpoint ${i} in`);
    checkSafe(cp.out, `checkpoint ${i} out`);
    if (!Number.isInteger(cp.bits) || cp.bits < 0 || cp.bits > 7) fail(`checkpoint ${i} bits ${cp.bits} not in 0..7`);
    if (cp.bits > 0 && cp.in === 0) fail(`checkpoint ${i} has bits but no preceding byte`);
  });
  if (cps[0].out !== 0) fail(`checkpoint 0 out ${cps[0].out} is not 0`);
  checkCheckpointOrder(cps);
  const last = cps[cps.length - 1];
  if (last.in >= z.compressedArchiveSize) {
    fail(`checkpoint ${cps.length - 1} in ${last.in} is not below compressed_archive_size ${z.compressedArchiveSize}`);
  }
  return cps.length;
}

/** Uncompressed layers: fixed spans over the layer file, whose size is the compressed size. */
function tarSpanCount(z: Ztoc): number {
  const tz = decodeTarZinfo(z.zinfoBlob);
  if (tz.size !== z.compressedArchiveSize) fail(`tar zinfo size ${tz.size} != compressed_archive_size ${z.compressedArchiveSize}`);
  if (tz.size === 0) fail('tar zinfo size is 0');
  return Math.ceil(tz.size / tz.spanSize);
}

function checkEntries(toc: FileMetadata[], archiveSize: number): void {
  toc.forEach((f, i) => checkEntry(f, i, archiveSize));
  checkNoOverlap(toc);
}

function checkEntry(f: FileMetadata, i: number, archiveSize: number): void {
  // Built only on failure: a JSON-quoted name per entry is measurable on 20,000-entry TOCs.
  const what = (): string => `entry ${i} (${JSON.stringify(f.name)})`;
  if (!ENTRY_TYPES.has(f.type)) fail(`${what()} has unknown type ${JSON.stringify(f.type)}`);
  const { uncompressedOffset: off, uncompressedSize: size } = f;
  if (!isSafe(off) || !isSafe(size) || !isSafe(f.mode) || !isSafe(f.devmajor) || !isSafe(f.devminor)) {
    fail(`${what()} has an offset, size, mode or device number that is not a non-negative safe integer`);
  }
  if (!isUint32(f.uid) || !isUint32(f.gid)) fail(`${what()} uid ${f.uid} or gid ${f.gid} is not a uint32`);
  if (off + size > archiveSize) fail(`${what()} data [${off}, +${size}) runs past uncompressed_archive_size ${archiveSize}`);
}

const isSafe = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;
const isUint32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Header-only entry types carry no data even when their size field is set. */
const dataSize = (f: FileMetadata): number => (f.type === 'reg' ? f.uncompressedSize : 0);

/**
 * Entries are data ranges of one tar stream, so (in offset order) each must start at or
 * after the 512-byte-aligned end of the previous one; upstream rejects overlaps the same way.
 */
function checkNoOverlap(toc: FileMetadata[]): void {
  let order = toc;
  for (let i = 1; i < toc.length; i++) {
    if (toc[i].uncompressedOffset < toc[i - 1].uncompressedOffset) {
      order = [...toc].sort((a, b) => a.uncompressedOffset - b.uncompressedOffset);
      break;
    }
  }
  let nextHeader = 0;
  for (const f of order) {
    if (f.uncompressedOffset < nextHeader) fail(`entry ${JSON.stringify(f.name)} at ${f.uncompressedOffset} overlaps the previous entry's data`);
    nextHeader = Math.ceil((f.uncompressedOffset + dataSize(f)) / TAR_BLOCK) * TAR_BLOCK;
  }
}
