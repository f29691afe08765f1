/**
 * Decoding of one 512-byte tar header block, following Go's archive/tar reader (the reader
 * the upstream zTOC builder uses), so field values match what upstream would record.
 */
import { invalidArgument } from '../errors/errors.js';

export const BLOCK_SIZE = 512;

/** Header fields before PAX / GNU long-name overrides. */
export interface RawHeader {
  typeflag: number;
  name: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

const SPACE = 0x20;
const NUL = 0;

export function isZeroBlock(b: Uint8Array, off: number): boolean {
  for (let i = off, end = off + BLOCK_SIZE; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/** Old writers summed signed bytes, so both the unsigned and the signed sum are accepted. */
export function checksumMatches(b: Uint8Array, off: number): boolean {
  const want = parseOctal(b, off + 148, 8);
  if (Number.isNaN(want)) return false;
  let unsigned = 0;
  let high = 0; // bytes >= 0x80, which count 256 less in the signed sum
  for (let i = off, end = off + BLOCK_SIZE; i < end; i++) {
    const c = b[i];
    unsigned += c;
    high += c >> 7;
  }
  // The checksum field itself is summed as eight spaces.
  for (let i = off + 148; i < off + 156; i++) {
    const c = b[i];
    unsigned -= c;
    high -= c >> 7;
  }
  unsigned += 8 * SPACE;
  return want === unsigned || want === unsigned - 256 * high;
}

/** Octal text, padded with spaces or NULs on either side; NaN when malformed. */
export function parseOctal(b: Uint8Array, off: number, len: number): number {
  let s = off;
  let e = off + len;
  while (s < e && (b[s] === SPACE || b[s] === NUL)) s++;
  while (e > s && (b[e - 1] === SPACE || b[e - 1] === NUL)) e--;
  if (s === e) return 0;
  let x = 0;
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c === NUL) break;
    if (c < 0x30 || c > 0x37) return NaN;
    x = x * 8 + (c - 0x30);
  }
  return Number.isSafeInteger(x) ? x : NaN;
}

/** Octal, or GNU base-256 (high bit set; 0xff-led values are negative two's complement). */
export function parseNumeric(b: Uint8Array, off: number, len: number): number {
  const first = b[off];
  if ((first & 0x80) === 0) return parseOctal(b, off, len);
  const inv = (first & 0x40) !== 0 ? 0xff : 0;
  let x = 0;
  for (let i = 0; i < len; i++) {
    let c = b[off + i] ^ inv;
    if (i === 0) c &= 0x7f;
    x = x * 256 + c;
    if (x > Number.MAX_SAFE_INTEGER) return NaN;
  }
  return inv ? -x - 1 : x;
}

/** A NUL-terminated (or field-filling) string, decoded as UTF-8. */
export function cString(b: Buffer, off: number, len: number): string {
  let e = off;
  const end = off + len;
  while (e < end && b[e] !== NUL) e++;
  return e === off ? '' : b.toString('utf8', off, e);
}

type Format = 'v7' | 'ustar' | 'star' | 'gnu';

function formatOf(b: Uint8Array, off: number): Format {
  const m = off + 257;
  const isUstar = b[m] === 0x75 && b[m + 1] === 0x73 && b[m + 2] === 0x74 && b[m + 3] === 0x61 && b[m + 4] === 0x72;
  if (!isUstar) return 'v7';
  if (b[m + 5] === NUL) {
    const t = off + 508;
    const star = b[t] === 0x74 && b[t + 1] === 0x61 && b[t + 2] === 0x72 && b[t + 3] === NUL;
    return star ? 'star' : 'ustar';
  }
  // GNU: magic "ustar " with version " \0".
  if (b[m + 5] === SPACE && b[m + 6] === SPACE && b[m + 7] === NUL) return 'gnu';
  return 'v7';
}

function numeric(b: Uint8Array, off: number, len: number, field: string, at: number): number {
  const v = parseNumeric(b, off, len);
  if (Number.isNaN(v)) throw invalidArgument(`tar header at offset ${at} has an invalid ${field} field`);
  return v;
}

/** Decodes a header block whose checksum was already verified; `at` is its stream offset. */
export function decodeHeader(b: Buffer, off: number, at: number): RawHeader {
  const format = formatOf(b, off);
  let name = cString(b, off, 100);
  if (format === 'ustar' || format === 'star') {
    const prefix = cString(b, off + 345, format === 'star' ? 131 : 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const extended = format !== 'v7';
  return {
    typeflag: b[off + 156],
    name,
    linkname: cString(b, off + 157, 100),
    size: numeric(b, off + 124, 12, 'size', at),
    mode: numeric(b, off + 100, 8, 'mode', at),
    uid: numeric(b, off + 108, 8, 'uid', at),
    gid: numeric(b, off + 116, 8, 'gid', at),
    mtime: numeric(b, off + 136, 12, 'mtime', at),
    uname: extended ? cString(b, off + 265, 32) : '',
    gname: extended ? cString(b, off + 297, 32) : '',
    devmajor: extended ? numeric(b, off + 329, 8, 'devmajor', at) : 0,
    devminor: extended ? numeric(b, off + 337, 8, 'devminor', at) : 0,
  };
}
