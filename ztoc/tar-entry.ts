/**
 * Turns a decoded header plus the PAX / GNU long-name records that preceded it into a
 * FileMetadata, applying overrides in Go archive/tar's order (PAX, then GNU long names).
 */
import { invalidArgument } from '../errors/errors.js';
import { formatGoTime, type UnixTime } from './go-time.js';
import { parsePaxInt, parsePaxTime, type PaxRecords } from './pax.js';
import type { RawHeader } from './tar-header.js';
import type { EntryType, FileMetadata, Xattr } from './types.js';

/** Records consumed since the previous entry. */
export interface PendingMeta {
  pax: PaxRecords | null;
  longName: string | null;
  longLink: string | null;
}

export interface BuiltEntry {
  entry: FileMetadata;
  /** Data bytes that follow the header in the stream (before block padding). */
  payload: number;
}

const TYPES: Record<string, EntryType> = {
  '0': 'reg',
  '7': 'reg', // contiguous file: a regular file to every reader that is not a 1980s tape drive
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const UNSUPPORTED: Record<string, string> = {
  S: 'GNU sparse',
  V: 'GNU volume header',
  M: 'GNU multi-volume continuation',
  D: 'GNU dumpdir',
  N: 'GNU old long name',
  A: 'Solaris ACL',
  E: 'Solaris extended attributes',
  X: 'Solaris extended header',
  I: 'inode metadata',
};

/** Go's isHeaderOnlyType: these never have data in the stream, whatever the size field says. */
const HEADER_ONLY = new Set<EntryType>(['hardlink', 'symlink', 'char', 'block', 'dir', 'fifo']);

function flagText(flag: number): string {
  return flag >= 0x20 && flag < 0x7f ? String.fromCharCode(flag) : `\\x${flag.toString(16).padStart(2, '0')}`;
}

function entryType(flag: number, name: string): EntryType {
  // Legacy (pre-POSIX) archives mark directories only by a trailing slash on a '\0' entry.
  if (flag === 0) return name.endsWith('/') ? 'dir' : 'reg';
  const t = TYPES[String.fromCharCode(flag)];
  if (t !== undefined) return t;
  const ch = flagText(flag);
  const what = UNSUPPORTED[ch] ?? 'unknown';
  throw invalidArgument(`tar entry ${JSON.stringify(name)} has unsupported type '${ch}' (${what})`);
}

/** Global records are defaults; the entry's own records win. */
function mergeRecords(globals: PaxRecords, local: PaxRecords | null): PaxRecords {
  if (globals.size === 0) return local ?? globals;
  if (local === null) return globals;
  const merged: PaxRecords = new Map(globals);
  for (const [k, r] of local) merged.set(k, r);
  return merged;
}

function sortedXattrs(records: PaxRecords): Xattr[] {
  if (records.size === 0) return [];
  return [...records.values()]
    .sort((a, b) => Buffer.compare(a.keyBytes, b.keyBytes))
    .map((r) => ({ key: r.key, value: r.value }));
}

/** Applies PAX overrides to `h` in place; empty values keep the header's value (as Go). */
function applyPax(h: RawHeader, records: PaxRecords, at: number): UnixTime {
  let mtime: UnixTime = { sec: h.mtime, nsec: 0 };
  const bad = (key: string) => invalidArgument(`tar PAX record "${key}" before header at offset ${at} is invalid`);
  for (const { key, value } of records.values()) {
    if (value.length === 0) continue;
    const v = value.toString('utf8');
    switch (key) {
      case 'path': h.name = v; break;
      case 'linkpath': h.linkname = v; break;
      case 'uname': h.uname = v; break;
      case 'gname': h.gname = v; break;
      case 'uid': h.uid = parsePaxInt(v); if (Number.isNaN(h.uid)) throw bad(key); break;
      case 'gid': h.gid = parsePaxInt(v); if (Number.isNaN(h.gid)) throw bad(key); break;
      case 'size': h.size = parsePaxInt(v); if (Number.isNaN(h.size)) throw bad(key); break;
      case 'mtime': {
        const t = parsePaxTime(v);
        if (t === null) throw bad(key);
        mtime = t;
        break;
      }
      case 'atime': case 'ctime': if (parsePaxTime(v) === null) throw bad(key); break;
      default: if (key.startsWith('GNU.sparse.')) throwPaxSparse(h, records);
    }
  }
  return mtime;
}

function throwPaxSparse(h: RawHeader, records: PaxRecords): never {
  const real = records.get('GNU.sparse.name')?.value.toString('utf8') ?? h.name;
  throw invalidArgument(
    `tar entry ${JSON.stringify(real)} has unsupported type '${flagText(h.typeflag)}' (PAX GNU sparse, GNU.sparse.* records)`,
  );
}

/** `at` is the header's stream offset; `dataOffset` is where its data starts. */
export function buildEntry(
  h: RawHeader,
  meta: PendingMeta,
  globals: PaxRecords,
  at: number,
  dataOffset: number,
): BuiltEntry {
  const records = mergeRecords(globals, meta.pax);
  const mtime = records.size > 0 ? applyPax(h, records, at) : { sec: h.mtime, nsec: 0 };
  if (meta.longName !== null) h.name = meta.longName;
  if (meta.longLink !== null) h.linkname = meta.longLink;
  const type = entryType(h.typeflag, h.name);
  const payload = HEADER_ONLY.has(type) ? 0 : h.size;
  if (payload < 0) throw invalidArgument(`tar entry ${JSON.stringify(h.name)} has a negative size`);
  const entry: FileMetadata = {
    name: h.name,
    type,
    uncompressedOffset: dataOffset,
    uncompressedSize: type === 'reg' ? payload : 0,
    linkname: h.linkname,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    uname: h.uname,
    gname: h.gname,
    modTime: formatGoTime(mtime),
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs: sortedXattrs(records),
  };
  return { entry, payload };
}
