import { invalidArgument } from '../../errors/errors.js';

/** `Content-Range: bytes <first>-<last>/<total|*>` of a 206 answer. */
export interface ContentRange {
  first: number;
  last: number;
  /** undefined for `*` (unknown length). */
  total?: number;
}

export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (last < first) return undefined;
  return { first, last, total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** `Range` header value for [start, endExclusive). */
export function rangeHeader(start: number, endExclusive: number): string {
  return `bytes=${start}-${endExclusive - 1}`;
}

/** Throws unless a 206's Content-Range is exactly the range asked for, of a blob of `size` bytes. */
export function checkContentRange(value: string | undefined, start: number, endExclusive: number, size: number, what: string): void {
  const cr = parseContentRange(value);
  if (!cr) throw invalidArgument(`${what}: 206 answer with missing or malformed Content-Range ${JSON.stringify(value ?? null)}`);
  if (cr.first !== start || cr.last !== endExclusive - 1 || (cr.total !== undefined && cr.total !== size)) {
    throw invalidArgument(`${what}: asked for bytes ${start}-${endExclusive - 1}/${size}, got Content-Range ${value}`);
  }
}

/** Validates [start, endExclusive) against a blob size. */
export function checkRangeBounds(start: number, endExclusive: number, size: number, what: string): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endExclusive) || start < 0 || endExclusive < start || endExclusive > size) {
    throw invalidArgument(`${what}: range [${start}, ${endExclusive}) is outside the blob of ${size} bytes`);
  }
}
