/**
 * The zInfo blob stored in a zTOC's `checkpoints` field (spec soci-format.md §2.2, §2.5).
 * Gzip layers: a packed little-endian checkpoint list ("v1" omits checkpoint 0, "v2" does
 * not). Uncompressed layers: upstream's TarZinfo FlatBuffers table; older upstream releases
 * wrote the same three integers as a raw 20-byte record, which is still accepted on read.
 */
import { Builder } from 'flatbuffers';
import { invalidArgument } from '../errors/errors.js';
import { FbReader } from './fb-reader.js';
import { WINDOW_SIZE, type Checkpoint, type ZInfo, type Ztoc } from './types.js';

const HEADER_SIZE = 12;
const CHECKPOINT_SIZE = 8 + 8 + 1 + WINDOW_SIZE;
/** TarZinfo version upstream writes (kept in step with the gzip zInfo version). */
const TAR_ZINFO_VERSION = 2;
const LEGACY_TAR_ZINFO_SIZE = 4 + 8 + 8;

const fail = (msg: string): never => {
  throw invalidArgument(`ztoc: ${msg}`);
};

function checkSafe(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) fail(`${what} ${v} is not a non-negative safe integer`);
}

function readSafe(view: DataView, pos: number, what: string): number {
  const v = view.getBigInt64(pos, true);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is negative or above 2^53-1`);
  return Number(v);
}

export function encodeGzipZinfo(spanSize: number, checkpoints: Checkpoint[]): Uint8Array {
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) fail(`zinfo span_size ${spanSize} must be positive`);
  if (checkpoints.length === 0 || checkpoints.length > 0x7fffffff) fail(`zinfo has ${checkpoints.length} checkpoints`);
  const out = new Uint8Array(HEADER_SIZE + checkpoints.length * CHECKPOINT_SIZE);
  const view = new DataView(out.buffer);
  view.setInt32(0, checkpoints.length, true);
  view.setBigInt64(4, BigInt(spanSize), true);
  checkpoints.forEach((cp, i) => {
    const pos = HEADER_SIZE + i * CHECKPOINT_SIZE;
    checkSafe(cp.in, `checkpoint ${i} in`);
    checkSafe(cp.out, `checkpoint ${i} out`);
    if (!Number.isInteger(cp.bits) || cp.bits < 0 || cp.bits > 7) fail(`checkpoint ${i} bits ${cp.bits} not in 0..7`);
    if (cp.window.length !== WINDOW_SIZE) fail(`checkpoint ${i} window is ${cp.window.length} bytes, not ${WINDOW_SIZE}`);
    view.setBigInt64(pos, BigInt(cp.in), true);
    view.setBigInt64(pos + 8, BigInt(cp.out), true);
    out[pos + 16] = cp.bits;
    out.set(cp.window, pos + 17);
  });
  return out;
}

/** Which layout the blob has, judged (as upstream does) only by its size against the header count. */
function gzipZinfoVersion(blobSize: number, count: number): 1 | 2 {
  if (count <= 0) fail(`zinfo checkpoint count ${count} must be positive`);
  const maxCount = Math.floor((blobSize - HEADER_SIZE) / CHECKPOINT_SIZE) + 1;
  if (count > maxCount) fail(`zinfo claims ${count} checkpoints but a ${blobSize}-byte blob holds at most ${maxCount}`);
  if (blobSize === HEADER_SIZE + count * CHECKPOINT_SIZE) return 2;
  if (blobSize === HEADER_SIZE + (count - 1) * CHECKPOINT_SIZE) return 1;
  return fail(`zinfo blob of ${blobSize} bytes fits neither v1 nor v2 for ${count} checkpoints`);
}

/** Checkpoint 0 of a v1 blob, which v1 writers left out because they assumed a bare 10-byte gzip header. */
function v1FirstCheckpoint(): Checkpoint {
  return { in: 10, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) };
}

/** Decodes a v1 or v2 blob. Windows are views into `blob`, not copies. */
export function decodeGzipZinfo(blob: Uint8Array): ZInfo & { version: 1 | 2 } {
  if (blob.length < HEADER_SIZE) fail(`zinfo blob of ${blob.length} bytes is shorter than its ${HEADER_SIZE}-byte header`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const count = view.getInt32(0, true);
  const spanSize = readSafe(view, 4, 'zinfo span_size');
  if (spanSize <= 0) fail(`zinfo span_size ${spanSize} must be positive`);
  const version = gzipZinfoVersion(blob.length, count);
  const checkpoints: Checkpoint[] = version === 1 ? [v1FirstCheckpoint()] : [];
  for (let pos = HEADER_SIZE; pos < blob.length; pos += CHECKPOINT_SIZE) {
    const i = checkpoints.length;
    const bits = blob[pos + 16];
    if (bits > 7) fail(`checkpoint ${i} bits ${bits} not in 0..7`);
    checkpoints.push({
      in: readSafe(view, pos, `checkpoint ${i} in`),
      out: readSafe(view, pos + 8, `checkpoint ${i} out`),
      bits,
      window: blob.subarray(pos + 17, pos + CHECKPOINT_SIZE),
    });
  }
  checkCheckpointOrder(checkpoints);
  return { version, spanSize, checkpoints };
}

/** Checkpoints must move strictly forward in both streams, or spans would be empty or reversed. */
export function checkCheckpointOrder(checkpoints: Checkpoint[]): void {
  for (let i = 1; i < checkpoints.length; i++) {
    const a = checkpoints[i - 1];
    const b = checkpoints[i];
    if (b.in <= a.in) fail(`checkpoint ${i} in ${b.in} is not above checkpoint ${i - 1} in ${a.in}`);
    if (b.out <= a.out) fail(`checkpoint ${i} out ${b.out} is not above checkpoint ${i - 1} out ${a.out}`);
  }
}

export function encodeTarZinfo(spanSize: number, size: number): Uint8Array {
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) fail(`tar zinfo span_size ${spanSize} must be positive`);
  checkSafe(size, 'tar zinfo size');
  const b = new Builder(64);
  b.startObject(3);
  b.addFieldInt32(0, TAR_ZINFO_VERSION, 0);
  b.addFieldInt64(1, BigInt(spanSize), 0n);
  b.addFieldInt64(2, BigInt(size), 0n);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

export function decodeTarZinfo(blob: Uint8Array): { version: number; spanSize: number; size: number } {
  const z = isLegacyTarZinfo(blob) ? decodeLegacyTarZinfo(blob) : decodeTarZinfoTable(blob);
  if (z.spanSize <= 0) fail(`tar zinfo span_size ${z.spanSize} must be positive`);
  return z;
}

/**
 * The raw record older upstream releases wrote: 20 bytes starting with version 2. A
 * FlatBuffers table can look like neither: with positive span_size and size it needs more
 * than 20 bytes, and its first word is a root offset, which is 4-byte aligned, never 2.
 */
function isLegacyTarZinfo(blob: Uint8Array): boolean {
  if (blob.length !== LEGACY_TAR_ZINFO_SIZE) return false;
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getInt32(0, true) === TAR_ZINFO_VERSION;
}

function decodeLegacyTarZinfo(blob: Uint8Array): { version: number; spanSize: number; size: number } {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  return {
    version: view.getInt32(0, true),
    spanSize: readSafe(view, 4, 'tar zinfo span_size'),
    size: readSafe(view, 12, 'tar zinfo size'),
  };
}

function decodeTarZinfoTable(blob: Uint8Array): { version: number; spanSize: number; size: number } {
  const r = new FbReader('ztoc', blob);
  const t = r.root('tar zinfo');
  return {
    version: r.int32(t, 0, 'tar zinfo version'),
    spanSize: r.safeInt64(t, 1, 'tar zinfo span_size'),
    size: r.safeInt64(t, 2, 'tar zinfo size'),
  };
}

export function decodeZinfo(z: Ztoc): ZInfo {
  if (z.compressionAlgorithm === 'gzip') {
    const { spanSize, checkpoints } = decodeGzipZinfo(z.zinfoBlob);
    return { spanSize, checkpoints };
  }
  if (z.compressionAlgorithm === 'uncompressed') return { spanSize: decodeTarZinfo(z.zinfoBlob).spanSize, checkpoints: [] };
  return fail(`unknown compression algorithm ${String(z.compressionAlgorithm)}`);
}
