import t, { type Test } from 'tap';
import { SociError } from '../../errors/errors.js';
import { prefixBitLengths } from '../../ztoc/deflate-prefix.js';
import { inflateSpan, inflateSpanInto, inflateSpanSync } from '../../ztoc/span-inflate.js';
import type { Checkpoint } from '../../ztoc/types.js';
import { tempDirFor } from '../helpers/tmp.js';
import { buildFixtures, checkpointedFixture, sha256, type GzFixture } from '../helpers/gzip-fixtures.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const STORED = 0;

const dir = await tempDirFor(t, 'span-inflate-');
const fx = await buildFixtures(dir);

const layer = checkpointedFixture;

/** BTYPE of the block a checkpoint starts: its header begins at bit (8 - bits) of byte in - 1. */
function firstBlockType(blob: Buffer, cp: Checkpoint): number {
  const v = cp.bits === 0 ? blob[cp.in] : (blob[cp.in - 1] >> (8 - cp.bits)) | (blob[cp.in] << cp.bits);
  return (v >> 1) & 3;
}

interface Stats {
  spans: number;
  midByte: number;
  storedMidByte: number;
  acrossMembers: number;
  bitValues: number[];
  /** Spans inflateSpanSync left to inflateSpan. */
  syncDeclined: number[];
}

let scratchBuffer = Buffer.alloc(0);
const scratch = (n: number): Buffer => (scratchBuffer.length >= n ? scratchBuffer : (scratchBuffer = Buffer.alloc(n)));

async function checkEverySpan(t: Test, f: GzFixture, spanSize: number): Promise<Stats> {
  const l = await layer(f, spanSize);
  const stats: Stats = { spans: 0, midByte: 0, storedMidByte: 0, acrossMembers: 0, bitValues: [], syncDeclined: [] };
  let failures = 0;
  for (const r of l.ranges) {
    const cp = l.checkpoints[r.id];
    const compressed = l.blob.subarray(r.compressedStart, r.compressedEnd);
    const want = sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd));
    const out = await inflateSpan(cp, compressed, r.uncompressedEnd - r.uncompressedStart);
    if (sha256(out) !== want) {
      failures++;
      t.fail(`span ${r.id} (in ${cp.in}, bits ${cp.bits}) differs from gzip -dc`);
    }
    const atOnce = inflateSpanSync(cp, compressed, r.uncompressedEnd - r.uncompressedStart);
    if (!atOnce) stats.syncDeclined.push(r.id);
    else if (sha256(atOnce) !== want) {
      failures++;
      t.fail(`span ${r.id} (in ${cp.in}, bits ${cp.bits}) inflated at once differs from gzip -dc`);
    }
    // As the worker threads do: into a buffer, mid-byte spans joined in one reused scratch buffer.
    const into = Buffer.alloc(r.uncompressedEnd - r.uncompressedStart + 1);
    const intoSize = inflateSpanInto(cp, compressed, into.length - 1, into, { scratch });
    if (intoSize === undefined ? atOnce !== undefined : intoSize !== into.length - 1 || sha256(into.subarray(0, -1)) !== want) {
      failures++;
      t.fail(`span ${r.id} (in ${cp.in}, bits ${cp.bits}) inflated into a buffer differs from gzip -dc, or only one way declined it`);
    }
    stats.spans++;
    if (cp.bits !== 0) stats.midByte++;
    if (!stats.bitValues.includes(cp.bits)) stats.bitValues.push(cp.bits);
    if (cp.bits !== 0 && firstBlockType(l.blob, cp) === STORED) stats.storedMidByte++;
    if (f.memberStarts.some((m) => m > r.compressedStart && m < r.compressedEnd)) stats.acrossMembers++;
  }
  t.equal(failures, 0, `all ${stats.spans} spans equal the gzip -dc slices, by inflateSpan and by inflateSpanSync`);
  // At once, only spans where a member ends are left to inflateSpan.
  const across = l.ranges.filter((r) => f.memberStarts.some((m) => m > r.compressedStart && m < r.compressedEnd)).map((r) => r.id);
  t.same(stats.syncDeclined.filter((id) => !across.includes(id)), [], `inflateSpanSync declined only spans across members (${stats.syncDeclined.length})`);
  t.comment(JSON.stringify(stats));
  return stats;
}

t.test('prefix bit lengths give every residue mod 8', async (t) => {
  t.same(prefixBitLengths.map((n) => n % 8), [0, 1, 2, 3, 4, 5, 6, 7]);
});

const cases: Array<[GzFixture, number]> = [
  [fx.doc, 64 * KiB],
  [fx.lib, 1 * MiB],
  [fx.lib, 4 * MiB],
  [fx.best, 64 * KiB],
  [fx.random, 64 * KiB],
];
for (const [f, span] of cases) {
  t.test(`${f.name} span ${span}: every span inflates to the gzip -dc slice`, async (t) => {
    const s = await checkEverySpan(t, f, span);
    if (f !== fx.random) t.ok(s.midByte > 0, `${s.midByte} spans start mid-byte`);
  });
}

t.test('mixed stored/Huffman blocks: stored blocks that start mid-byte', async (t) => {
  const s = await checkEverySpan(t, fx.mixed, 64 * KiB);
  t.ok(s.storedMidByte > 0, `${s.storedMidByte} spans start with a stored block mid-byte`);
});

t.test('multi-member gzip: spans across member boundaries', async (t) => {
  for (const span of [64 * KiB, 1 * MiB]) {
    const s = await checkEverySpan(t, fx.multi, span);
    t.ok(s.acrossMembers > 0, `span ${span}: ${s.acrossMembers} spans cross a member boundary`);
    t.ok(s.midByte > 0, `span ${span}: ${s.midByte} spans start mid-byte`);
    if (span === 64 * KiB) t.same(s.bitValues.sort(), [0, 1, 2, 3, 4, 5, 6, 7], 'every bits value 0-7 resumed');
    t.ok(s.syncDeclined.length > 0, `span ${span}: ${s.syncDeclined.length} spans across members left to inflateSpan`);
  }
});

async function rejectsSoci(t: Test, p: Promise<unknown>, re: RegExp, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: no error`);
  } catch (err) {
    t.ok(err instanceof SociError && err.kind === 'invalid-argument', `${what}: SociError invalid-argument`);
    t.match((err as Error).message, re, what);
  }
}

t.test('corrupt spans and size mismatches are errors, not wrong data', async (t) => {
  const l = await layer(fx.doc, 64 * KiB);
  // Flip the first whole byte of each Huffman-coded span: its block header/code tables.
  let checked = 0;
  for (const r of l.ranges.slice(1, 40)) {
    const cp = l.checkpoints[r.id];
    if (firstBlockType(l.blob, cp) === STORED) continue;
    const bad = Buffer.from(l.blob.subarray(r.compressedStart, r.compressedEnd));
    bad[cp.bits === 0 ? 0 : 1] ^= 0x55;
    await rejectsSoci(t, inflateSpan(cp, bad, r.uncompressedEnd - r.uncompressedStart), /^span at compressed offset \d+ \(bits \d\): /, `span ${r.id} flipped`);
    t.equal(inflateSpanSync(cp, bad, r.uncompressedEnd - r.uncompressedStart), undefined, `span ${r.id} flipped: declined at once`);
    checked++;
  }
  t.ok(checked > 10, `${checked} corrupted spans rejected`);

  const r = l.ranges[3];
  const cp = l.checkpoints[3];
  const good = l.blob.subarray(r.compressedStart, r.compressedEnd);
  const size = r.uncompressedEnd - r.uncompressedStart;
  await rejectsSoci(t, inflateSpan(cp, good, size + 1), /inflated to \d+ bytes, expected \d+$/, 'expected size too big');
  await rejectsSoci(t, inflateSpan(cp, good, size - 1), /more than the expected \d+ bytes$/, 'expected size too small');
  await rejectsSoci(t, inflateSpan(cp, good.subarray(0, good.length >> 1), size), /inflated to \d+ bytes, expected/, 'truncated span');
  // The worker threads hand it views into shared memory.
  const shared = new Uint8Array(new SharedArrayBuffer(good.length + 3), 3, good.length);
  shared.set(good);
  t.equal(sha256(inflateSpanSync(cp, shared, size) ?? Buffer.alloc(0)), sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd)), 'at once from shared memory');
  t.equal(inflateSpanSync(cp, good, size + 1), undefined, 'at once: expected size too big');
  t.equal(inflateSpanSync(cp, good, size - 1), undefined, 'at once: expected size too small');
  t.equal(inflateSpanSync(cp, good.subarray(0, good.length >> 1), size), undefined, 'at once: truncated span');
  const lastWant = sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd - 100));
  t.equal(sha256(inflateSpanSync(cp, good, size - 100, { lastSpan: true }) ?? Buffer.alloc(0)), lastWant, 'at once: a last span drops output past the layer end');
  t.equal(sha256(await inflateSpan(cp, good, size - 100, { lastSpan: true })), lastWant, 'so does inflateSpan');
  // A wrong window is not detectable by inflate (matches still decode); it must change the data.
  const zeroWindow = { ...cp, window: new Uint8Array(32768) };
  const withZeros = await inflateSpan(zeroWindow, good, size);
  t.not(sha256(withZeros), sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd)), 'the window is used');
  t.equal(sha256(inflateSpanSync(zeroWindow, good, size) ?? Buffer.alloc(0)), sha256(withZeros), 'at once too');
  t.equal((await inflateSpan(cp, good.subarray(0, 0), 0)).length, 0, 'empty span');

  // The worker threads inflate straight into the span's shared buffer.
  const want = sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd));
  const dest = new Uint8Array(new SharedArrayBuffer(size + 1000), 100, size + 1);
  new Uint8Array(dest.buffer).fill(0xee);
  t.equal(inflateSpanInto(cp, shared, size, dest), size, 'into a buffer: the span size');
  t.equal(sha256(dest.subarray(0, size)), want, 'into a buffer: the span bytes');
  const all = new Uint8Array(dest.buffer);
  t.ok(all.subarray(0, 100).every((b) => b === 0xee) && all.subarray(100 + size).every((b) => b === 0xee), 'nothing written outside the span');
  const exact = new Uint8Array(size);
  t.equal(inflateSpanInto(cp, good, size, exact), size, 'a buffer with no room past the span still gets it');
  t.equal(sha256(exact), want);
  t.equal(inflateSpanInto(cp, good, size - 1, new Uint8Array(size)), undefined, 'into a buffer: expected size too small');
  t.equal(inflateSpanInto(cp, good, size, new Uint8Array(size - 1)), undefined, 'into a buffer: too small for the span');
});
