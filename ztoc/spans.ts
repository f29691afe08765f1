import { invalidArgument } from '../errors/errors.js';
import type { Checkpoint, SpanRange } from './types.js';

type CheckpointPosition = Pick<Checkpoint, 'in' | 'out' | 'bits'>;

/**
 * Span ranges of a gzip layer (spec §2.3): span i is uncompressed [out_i, out_{i+1}) and
 * compressed [in_i - (bits_i ? 1 : 0), in_{i+1}); the last span ends at the archive sizes.
 * Rejects checkpoints whose offsets are not strictly increasing or exceed the archive.
 */
export function gzipSpanRanges(
  checkpoints: readonly CheckpointPosition[],
  compressedSize: number,
  uncompressedSize: number,
): SpanRange[] {
  checkpoints.forEach((cp, i) => checkCheckpoint(cp, i, checkpoints[i - 1], compressedSize, uncompressedSize));
  return checkpoints.map((cp, i) => {
    const next = checkpoints[i + 1];
    return {
      id: i,
      compressedStart: cp.in - (cp.bits !== 0 ? 1 : 0),
      compressedEnd: next === undefined ? compressedSize : next.in,
      uncompressedStart: cp.out,
      uncompressedEnd: next === undefined ? uncompressedSize : next.out,
    };
  });
}

function checkCheckpoint(
  cp: CheckpointPosition,
  i: number,
  prev: CheckpointPosition | undefined,
  compressedSize: number,
  uncompressedSize: number,
): void {
  const bad = (why: string): never => {
    throw invalidArgument(`zTOC checkpoint ${i} (in ${cp.in}, out ${cp.out}, bits ${cp.bits}): ${why}`);
  };
  if (!Number.isInteger(cp.bits) || cp.bits < 0 || cp.bits > 7) bad('bits out of range 0-7');
  if (!Number.isSafeInteger(cp.in) || cp.in < (cp.bits !== 0 ? 1 : 0)) bad('bad compressed offset');
  if (!Number.isSafeInteger(cp.out) || cp.out < 0) bad('bad uncompressed offset');
  if (prev !== undefined && (cp.in <= prev.in || cp.out <= prev.out)) bad('offsets not strictly increasing');
  if (cp.in > compressedSize) bad(`beyond compressed size ${compressedSize}`);
  if (cp.out > uncompressedSize) bad(`beyond uncompressed size ${uncompressedSize}`);
}

/**
 * Span ranges of an uncompressed layer (upstream TarZinfo): fixed [i*spanSize, min((i+1)*spanSize, size)),
 * identical in both streams; ceil(size / spanSize) spans, none for an empty layer.
 */
export function plainSpanRanges(spanSize: number, size: number): SpanRange[] {
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) throw invalidArgument(`span size ${spanSize} is not a positive integer`);
  if (!Number.isSafeInteger(size) || size < 0) throw invalidArgument(`layer size ${size} is not a non-negative integer`);
  const ranges: SpanRange[] = [];
  for (let id = 0, start = 0; start < size; id++, start += spanSize) {
    const end = Math.min(start + spanSize, size);
    ranges.push({ id, compressedStart: start, compressedEnd: end, uncompressedStart: start, uncompressedEnd: end });
  }
  return ranges;
}

/** Id of the span holding uncompressed `offset` (the last span whose start is <= offset), or -1 if none. */
export function spanIdForOffset(ranges: readonly SpanRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].uncompressedStart <= offset) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found === -1 || offset >= ranges[found].uncompressedEnd) return -1;
  return found;
}
