/**
 * A layer's stats laid out for the patched fuse-native addon (third_party/fuse-native/
 * stat-table.patch), which answers getattr (every kernel LOOKUP of the high-level libfuse API)
 * from it in C instead of waking the JS thread and waiting behind its span fetches and decodes:
 * a `tar` of 42,559 files as the first thing on a fresh mount took 18.4 s with getattr in JS and
 * 15.6 s with the table (the first stat walk 8.0k vs 14.7k files/s). The layer is read-only,
 * so the table is built once per mount and is complete: a path not in it does not exist.
 *
 * Layout (uint32 words, little-endian): [0] slot count (a power of 2), [1] entries, [2-3]
 * paths found and [4-5] paths not found (uint64, counted by the addon), then the slots (entry
 * index + 1, 0 = empty; linear probing from fnv1a32(path bytes)), then per entry the 21 stat
 * words and its path's byte offset and length; then the paths' UTF-8 bytes.
 */
export const STAT_WORDS = 21;
const HEADER = 6;
const ENTRY = STAT_WORDS + 2;

/** FNV-1a of `bytes[start, end)`. */
export function fnv1a32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = 2166136261;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return h;
}

/**
 * `entries`: each path (as FUSE names it: "/", "/a/b") with its stat words. Paths are written
 * straight into the table and hashed there: a Buffer per path was ~40 ms of a 44,000-file build.
 */
export function buildStatTable(entries: ReadonlyArray<readonly [string, Uint32Array]>): Buffer {
  let slots = 2;
  while (slots < entries.length * 2) slots *= 2;
  const words = HEADER + slots + entries.length * ENTRY;
  let pathBytes = 0;
  for (const [p] of entries) pathBytes += Buffer.byteLength(p, 'utf8');
  // Its own ArrayBuffer: 8-byte aligned for the addon's 64-bit counters.
  const buf = Buffer.from(new ArrayBuffer(words * 4 + pathBytes));
  const w = new Uint32Array(buf.buffer, 0, words);
  w[0] = slots;
  w[1] = entries.length;
  let at = words * 4;
  entries.forEach(([path, stat], i) => {
    if (stat.length !== STAT_WORDS) throw new RangeError(`stat of ${path} has ${stat.length} words, not ${STAT_WORDS}`);
    const e = HEADER + slots + i * ENTRY;
    const length = buf.write(path, at, 'utf8');
    w.set(stat, e);
    w[e + STAT_WORDS] = at - words * 4;
    w[e + STAT_WORDS + 1] = length;
    let s = fnv1a32(buf, at, at + length) & (slots - 1);
    at += length;
    while (w[HEADER + s] !== 0) s = (s + 1) & (slots - 1);
    w[HEADER + s] = i + 1;
  });
  return buf;
}

/** What the addon counted: lookups of paths in the table and of paths not in it. */
export function statTableCounts(table: Buffer): { found: number; missing: number } {
  return { found: Number(table.readBigUInt64LE(8)), missing: Number(table.readBigUInt64LE(16)) };
}

/** The stat words of `path` as the addon would find them (tests, and a check of the layout). */
export function lookupStat(table: Buffer, path: string): Uint32Array | undefined {
  const w = new Uint32Array(table.buffer, table.byteOffset, HEADER);
  const slots = w[0];
  const n = w[1];
  const all = new Uint32Array(table.buffer, table.byteOffset, HEADER + slots + n * ENTRY);
  const base = all.length * 4;
  const want = Buffer.from(path, 'utf8');
  for (let s = fnv1a32(want) & (slots - 1), probes = 0; probes < slots; s = (s + 1) & (slots - 1), probes++) {
    const idx = all[HEADER + s];
    if (idx === 0) return undefined;
    const e = HEADER + slots + (idx - 1) * ENTRY;
    const off = all[e + STAT_WORDS];
    if (all[e + STAT_WORDS + 1] === want.length && table.subarray(base + off, base + off + want.length).equals(want)) return all.subarray(e, e + STAT_WORDS);
  }
  return undefined;
}

const DIR_HEADER = 4;
const DIR_ENTRY = 3;

/** The parent directory of a FUSE path ("/" is its own). */
function parentPath(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

/**
 * readdir's table for the addon (third_party/fuse-native/dir-table.patch), beside a stat table
 * built from the same `paths` in the same order: the addon lists a directory in C, names taken
 * from its children's paths, without waking the JS thread (which is busy fetching and
 * inflating spans during a cold read). Each entry: its path and, for a directory, its child
 * names in listing order.
 *
 * Layout (uint32 words): [0] entries, [2-3] readdirs answered (uint64, counted by the addon),
 * then per entry its parent's index, the offset of its first child in the child list and its
 * child count, then the child list (entry indices).
 */
export function buildDirTable(entries: ReadonlyArray<readonly [string, readonly string[] | undefined]>): Buffer {
  const paths = entries.map(([p]) => p);
  const index = new Map(paths.map((p, i) => [p, i]));
  const lists = entries.map(([p, children]) => (children ?? []).map((name) => {
    const i = index.get(p === '/' ? `/${name}` : `${p}/${name}`);
    if (i === undefined) throw new RangeError(`child ${name} of ${p} has no entry`);
    return i;
  }));
  const kids = lists.reduce((n, l) => n + l.length, 0);
  const w = new Uint32Array(new ArrayBuffer((DIR_HEADER + paths.length * DIR_ENTRY + kids) * 4));
  w[0] = paths.length;
  let at = 0;
  const base = DIR_HEADER + paths.length * DIR_ENTRY;
  paths.forEach((p, i) => {
    const parent = index.get(parentPath(p));
    if (parent === undefined) throw new RangeError(`parent of ${p} has no entry`);
    const e = DIR_HEADER + i * DIR_ENTRY;
    w[e] = parent;
    w[e + 1] = at;
    w[e + 2] = lists[i].length;
    w.set(lists[i], base + at);
    at += lists[i].length;
  });
  return Buffer.from(w.buffer);
}

/** readdirs the addon answered from a dir table. */
export function dirTableReads(table: Buffer): number {
  return Number(table.readBigUInt64LE(8));
}

/** A directory's listing as the addon would give it (tests): `.`, `..` and its children's names. */
export function listDir(dirTable: Buffer, paths: readonly string[], path: string): string[] | undefined {
  const i = paths.indexOf(path);
  if (i < 0) return undefined;
  const w = new Uint32Array(dirTable.buffer, dirTable.byteOffset, dirTable.length / 4);
  const e = DIR_HEADER + i * DIR_ENTRY;
  const base = DIR_HEADER + w[0] * DIR_ENTRY;
  const names = [...w.subarray(base + w[e + 1], base + w[e + 1] + w[e + 2])].map((k) => paths[k].slice(paths[k].lastIndexOf('/') + 1));
  return ['.', '..', ...names];
}
