/** Deterministic, realistic zTOC values for codec tests and benchmarks. */
import { createHash } from 'node:crypto';
import type { Checkpoint, EntryType, FileMetadata, Xattr, Ztoc } from '../../ztoc/types.js';
import { WINDOW_SIZE } from '../../ztoc/types.js';
import { encodeGzipZinfo } from '../../ztoc/zinfo.js';

/** mulberry32: a tiny seeded PRNG so fixtures are identical on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

export const sha256 = (s: string): string => 'sha256:' + createHash('sha256').update(s).digest('hex');

const TYPES: EntryType[] = ['dir', 'reg', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'reg', 'reg'];
const NAMES = ['bin', 'libc.so.6', 'ünïcødé-名前', 'emoji-😀', 'with space', 'x'];

function xattrsFor(i: number, rand: () => number): Xattr[] {
  if (i % 3 !== 0) return [];
  const enc = new TextEncoder();
  // Deliberately unsorted: the encoder must sort by key.
  return [
    { key: 'SCHILY.xattr.user.comment', value: enc.encode(`note ${i} ✓`) },
    { key: 'SCHILY.xattr.security.capability', value: randomBytes(rand, 20) },
    { key: 'LIBARCHIVE.creationtime', value: enc.encode('1700000000') },
  ];
}

function entry(i: number, offset: number, rand: () => number): FileMetadata {
  const type = TYPES[i % TYPES.length];
  const isLink = type === 'symlink' || type === 'hardlink';
  const isDev = type === 'char' || type === 'block';
  return {
    name: `./dir${i % 17}/${NAMES[i % NAMES.length]}-${i}${type === 'dir' ? '/' : ''}`,
    type,
    uncompressedOffset: offset,
    uncompressedSize: type === 'reg' ? Math.floor(rand() * 70000) : 0,
    linkname: isLink ? `../target-${i}` : '',
    mode: [0o755, 0o644, 0o4755, 0o1777, 0o2755][i % 5],
    uid: i % 11 === 0 ? 4294967294 : i % 1000,
    gid: i % 7,
    uname: i % 2 ? 'root' : '',
    gname: i % 2 ? 'wheel' : 'grp-ä',
    modTime: i % 4 ? `2024-03-0${(i % 9) + 1}T12:34:56.${String(i).padStart(9, '0')}Z` : '2023-01-01T00:00:00Z',
    devmajor: isDev ? 8 : 0,
    devminor: isDev ? i % 256 : 0,
    xattrs: xattrsFor(i, rand),
  };
}

/** Entries laid out as a real tar would place them: header (and PAX header) blocks, then padded data. */
export function sampleToc(files: number, seed = 1): { toc: FileMetadata[]; size: number } {
  const rand = prng(seed);
  const toc: FileMetadata[] = [];
  let pos = 0;
  for (let i = 0; i < files; i++) {
    if (i % 3 === 0) pos += 1024; // PAX header + its data block
    pos += 512;
    const e = entry(i, pos, rand);
    toc.push(e);
    pos += Math.ceil(e.uncompressedSize / 512) * 512;
  }
  return { toc, size: pos + 1024 };
}

export function sampleCheckpoints(n: number, uncompressedSize: number, seed = 2): Checkpoint[] {
  const rand = prng(seed);
  const step = Math.max(1, Math.floor(uncompressedSize / n));
  return Array.from({ length: n }, (_, i) => ({
    in: i === 0 ? 10 : 10 + i * (Math.floor(step / 3) + 1000) + Math.floor(rand() * 1000),
    out: i * step,
    bits: i === 0 ? 0 : Math.floor(rand() * 8),
    window: i === 0 ? new Uint8Array(WINDOW_SIZE) : randomBytes(rand, WINDOW_SIZE),
  }));
}

/** A valid gzip zTOC with `files` entries and `spans` checkpoints. */
export function sampleZtoc(files: number, spans: number, seed = 1): Ztoc {
  const { toc, size } = sampleToc(files, seed);
  const cps = sampleCheckpoints(spans, size, seed + 1);
  return {
    version: '0.9',
    buildToolIdentifier: 'soci-node test ✓',
    compressedArchiveSize: cps[cps.length - 1].in + 5000,
    uncompressedArchiveSize: size,
    toc,
    compressionAlgorithm: 'gzip',
    maxSpanId: spans - 1,
    spanDigests: Array.from({ length: spans }, (_, i) => sha256(`span ${i}`)),
    zinfoBlob: encodeGzipZinfo(4 * 1024 * 1024, cps),
  };
}

/** The zTOC with xattrs in the order the codec emits (sorted by key bytes). */
export function withSortedXattrs(z: Ztoc): Ztoc {
  const cmp = (a: Xattr, b: Xattr): number => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key));
  return { ...z, toc: z.toc.map((f) => ({ ...f, xattrs: [...f.xattrs].sort(cmp) })) };
}
