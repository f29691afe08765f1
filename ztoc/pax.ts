/**
 * PAX extended header records ("%d %s=%s\n"), parsed and validated the way Go's
 * archive/tar does, keeping values as raw bytes (xattr values may be binary).
 */
import { invalidArgument } from '../errors/errors.js';
import type { UnixTime } from './go-time.js';

export interface PaxRecord {
  key: string;
  /** The key's bytes, for byte-order sorting (JS string order differs from UTF-8 order). */
  keyBytes: Buffer;
  value: Buffer;
}

export type PaxRecords = Map<string, PaxRecord>;

/** Keys whose values become header fields; Go rejects NULs in these. */
const STRING_KEYS = new Set(['path', 'linkpath', 'uname', 'gname']);
const SPACE = 0x20;
const NEWLINE = 0x0a;
const EQUALS = 0x3d;

/** Parses one extended header's data; `at` is the header's stream offset, for messages. */
export function parsePaxRecords(data: Buffer, at: number): PaxRecords {
  const records: PaxRecords = new Map();
  const bad = (why: string) => invalidArgument(`tar PAX header at offset ${at} is malformed: ${why}`);
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(SPACE, pos);
    if (sp < 0) throw bad('record without a length');
    const lenText = data.toString('latin1', pos, sp);
    if (!/^\d+$/.test(lenText)) throw bad(`bad record length "${lenText}"`);
    const n = Number(lenText);
    const end = pos + n;
    if (n < 5 || end > data.length || end <= sp + 1) throw bad(`record length ${n} out of range`);
    if (data[end - 1] !== NEWLINE) throw bad('record not terminated by a newline');
    const eq = data.indexOf(EQUALS, sp + 1);
    if (eq < 0 || eq >= end - 1) throw bad('record without "="');
    const keyBytes = Buffer.from(data.subarray(sp + 1, eq));
    if (keyBytes.length === 0 || keyBytes.includes(0)) throw bad('empty key or NUL in key');
    const key = keyBytes.toString('utf8');
    const value = Buffer.from(data.subarray(eq + 1, end - 1));
    if (STRING_KEYS.has(key) && value.includes(0)) throw bad(`NUL in ${key} value`);
    records.set(key, { key, keyBytes, value });
    pos = end;
  }
  return records;
}

/** A decimal integer as Go's strconv.ParseInt accepts it; NaN otherwise. */
export function parsePaxInt(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) return NaN;
  const v = Number(s);
  return Number.isSafeInteger(v) ? v : NaN;
}

/**
 * PAX time "secs[.frac]" (secs may be negative); fraction digits beyond nine are
 * truncated, and a negative time subtracts its fraction, as Go's parsePAXTime does.
 */
export function parsePaxTime(s: string): UnixTime | null {
  const dot = s.indexOf('.');
  const secText = dot < 0 ? s : s.slice(0, dot);
  const fracText = dot < 0 ? '' : s.slice(dot + 1);
  if (!/^[+-]?\d+$/.test(secText)) return null;
  const sec = Number(secText);
  if (!Number.isFinite(sec)) return null;
  if (fracText === '') return { sec, nsec: 0 };
  if (!/^\d+$/.test(fracText)) return null;
  const nsec = Number(fracText.slice(0, 9).padEnd(9, '0'));
  return { sec, nsec: secText.startsWith('-') ? -nsec : nsec };
}
