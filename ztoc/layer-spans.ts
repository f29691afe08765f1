import { invalidArgument } from '../errors/errors.js';
import { sha256Digest } from './digest.js';
import { inflateSpan } from './span-inflate.js';
import { gzipSpanRanges, plainSpanRanges, spanIdForOffset } from './spans.js';
import type { Checkpoint, CompressionAlgorithm, FileMetadata, SpanRange, Ztoc } from './types.js';
import { decodeZinfo } from './zinfo.js';

/** A layer's spans as the read path needs them: where each lies and how to decompress it. */
export interface LayerSpans {
  algorithm: CompressionAlgorithm;
  spanSize: number;
  ranges: SpanRange[];
  checkpoints: Checkpoint[];
  spanDigests: string[];
}

export function layerSpans(z: Ztoc): LayerSpans {
  const zinfo = decodeZinfo(z);
  const ranges =
    z.compressionAlgorithm === 'gzip'
      ? gzipSpanRanges(zinfo.checkpoints, z.compressedArchiveSize, z.uncompressedArchiveSize)
      : plainSpanRanges(zinfo.spanSize, z.compressedArchiveSize);
  if (ranges.length !== z.spanDigests.length) {
    throw invalidArgument(`zTOC has ${ranges.length} spans but ${z.spanDigests.length} span digests`);
  }
  return { algorithm: z.compressionAlgorithm, spanSize: zinfo.spanSize, ranges, checkpoints: zinfo.checkpoints, spanDigests: z.spanDigests };
}

/** First and last span ids holding [offset, offset + size); a zero-size range sits in the span of its offset. */
export function spansOfRange(spans: LayerSpans, offset: number, size: number): { start: number; end: number } {
  const start = spanIdForOffset(spans.ranges, offset);
  const end = size > 0 ? spanIdForOffset(spans.ranges, offset + size - 1) : start;
  return { start, end };
}

export function spansOfFile(spans: LayerSpans, f: FileMetadata): { start: number; end: number } {
  return spansOfRange(spans, f.uncompressedOffset, f.uncompressedSize);
}

/** What decompressing one span needs besides its bytes: small enough to hand to a worker thread. */
export interface SpanCodec {
  algorithm: CompressionAlgorithm;
  checkpoint: Checkpoint;
  uncompressedSize: number;
  /** The layer's last span: output past `uncompressedSize` (tar record padding) is dropped. */
  lastSpan: boolean;
}

export function spanCodec(spans: LayerSpans, id: number): SpanCodec {
  const r = spans.ranges[id];
  return { algorithm: spans.algorithm, checkpoint: spans.checkpoints[id], uncompressedSize: r.uncompressedEnd - r.uncompressedStart, lastSpan: id === spans.ranges.length - 1 };
}

/** Decompresses one span from exactly its compressed bytes, into memory of its own. */
export async function decodeSpan(codec: SpanCodec, compressed: Uint8Array): Promise<Buffer> {
  const expected = codec.uncompressedSize;
  if (codec.algorithm === 'uncompressed') {
    if (compressed.length !== expected) throw invalidArgument(`uncompressed span: ${compressed.length} bytes, expected ${expected}`);
    // A copy: callers may reuse the memory of the bytes they fetched.
    return Buffer.from(compressed);
  }
  return inflateSpan(codec.checkpoint, compressed, expected, { lastSpan: codec.lastSpan });
}

/** Decompresses span `id` from exactly its compressed bytes. */
export async function decompressSpan(spans: LayerSpans, id: number, compressed: Uint8Array): Promise<Buffer> {
  return decodeSpan(spanCodec(spans, id), compressed);
}

/** Checks a span's compressed bytes against the digest the zTOC recorded for it. */
export function verifySpan(spans: LayerSpans, id: number, compressed: Uint8Array): void {
  const got = sha256Digest(compressed);
  if (got !== spans.spanDigests[id]) {
    throw invalidArgument(`span ${id} digest mismatch: expected ${spans.spanDigests[id]}, got ${got}`);
  }
}

/**
 * Uncompressed bytes [offset, offset + size) of a layer, fetched span by span through
 * `readCompressed(start, end)` (a file read, a containerd content read or a registry Range GET).
 */
export async function readLayerRange(
  spans: LayerSpans,
  offset: number,
  size: number,
  readCompressed: (start: number, end: number) => Promise<Uint8Array>,
): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const { start, end } = spansOfRange(spans, offset, size);
  if (start < 0 || end < 0) throw invalidArgument(`range ${offset}+${size} lies outside the layer`);
  const out = Buffer.alloc(size);
  for (let id = start; id <= end; id++) {
    const r = spans.ranges[id];
    const compressed = await readCompressed(r.compressedStart, r.compressedEnd);
    verifySpan(spans, id, compressed);
    const bytes = await decompressSpan(spans, id, compressed);
    const from = Math.max(offset, r.uncompressedStart);
    const to = Math.min(offset + size, r.uncompressedEnd);
    bytes.copy(out, from - offset, from - r.uncompressedStart, to - r.uncompressedStart);
  }
  return out;
}
