import t, { type Test } from 'tap';
import { SpanInflateStream } from '../../ztoc/span-inflate-stream.js';
import type { Checkpoint } from '../../ztoc/types.js';
import { tempDirFor } from '../helpers/tmp.js';
import { buildFixtures, checkpointedFixture, sha256, type GzFixture } from '../helpers/gzip-fixtures.js';

const KiB = 1024;

const dir = await tempDirFor(t, 'span-inflate-stream-');
const fx = await buildFixtures(dir);

const layer = checkpointedFixture;

/** A fixed pseudo-random sequence, so a failure can be replayed. */
function pieceSizes(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    // Single bytes now and then: the first piece of a mid-byte span may be just the partial byte.
    return x % 7 === 0 ? 1 : 1 + (x % (12 * KiB));
  };
}

/**
 * Streams `compressed` in pieces; the output as it came, and end()'s answer. `into`: into a
 * buffer with a little room past the span (`inPlace`: every chunk was a view into it, where
 * it belongs).
 */
async function stream(cp: Checkpoint, compressed: Uint8Array, expected: number, lastSpan: boolean, seed: number, into = false): Promise<{ ok: boolean; out: Buffer; inOrder: boolean; inPlace: boolean }> {
  const out = Buffer.alloc(expected);
  const dest = into ? new Uint8Array(new SharedArrayBuffer(expected + 65)) : undefined;
  let next = 0;
  let inOrder = true;
  let inPlace = into;
  const s = new SpanInflateStream(cp, expected, lastSpan, (chunk, at) => {
    if (at !== next) inOrder = false;
    if (chunk.buffer !== dest?.buffer || chunk.byteOffset !== at) inPlace = false;
    chunk.copy(out, at);
    next = at + chunk.length;
  }, dest);
  const size = pieceSizes(seed);
  for (let at = 0; at < compressed.length; ) {
    const n = Math.min(size(), compressed.length - at);
    s.push(compressed.subarray(at, at + n));
    at += n;
    // Let the engine run between pieces now and then, as it would between network chunks.
    if (at % 3 === 0) await new Promise((r) => setImmediate(r));
  }
  return { ok: await s.end(), out, inOrder, inPlace };
}

async function everySpan(t: Test, f: GzFixture, spanSize: number): Promise<{ streamed: number; declined: number[] }> {
  const l = await layer(f, spanSize);
  let streamed = 0;
  const declined: number[] = [];
  for (const r of l.ranges) {
    const expected = r.uncompressedEnd - r.uncompressedStart;
    // Every other span into a buffer of its own, as the worker threads stream them.
    const into = r.id % 2 === 1;
    const got = await stream(l.checkpoints[r.id], l.blob.subarray(r.compressedStart, r.compressedEnd), expected, false, r.id + 1, into);
    if (!got.ok) {
      declined.push(r.id);
      continue;
    }
    streamed++;
    t.ok(got.inOrder, `span ${r.id}: output in order`);
    if (into && !got.inPlace) t.fail(`span ${r.id}: not written in place`);
    if (sha256(got.out) !== sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd))) t.fail(`span ${r.id} (bits ${l.checkpoints[r.id].bits}) differs from gzip -dc`);
  }
  t.comment(`${f.name}: ${streamed} streamed, declined ${JSON.stringify(declined)}`);
  return { streamed, declined };
}

for (const f of [fx.doc, fx.lib, fx.best, fx.random, fx.mixed]) {
  t.test(`${f.name}: every span streamed in pieces equals the gzip -dc slice`, async (t) => {
    const l = await layer(f, 64 * KiB);
    const { streamed, declined } = await everySpan(t, f, 64 * KiB);
    // One member: only the last span may be left to inflateSpan (the gzip trailer follows it).
    t.ok(declined.every((id) => id === l.ranges.length - 1), `declined only the last span: ${JSON.stringify(declined)}`);
    t.ok(streamed >= l.ranges.length - 1, `${streamed} of ${l.ranges.length}`);
  });
}

t.test('multi-member gzip: a span where a member ends is declined, never wrong', async (t) => {
  const l = await layer(fx.multi, 64 * KiB);
  const { streamed, declined } = await everySpan(t, fx.multi, 64 * KiB);
  const across = l.ranges.filter((r) => fx.multi.memberStarts.some((m) => m > r.compressedStart && m < r.compressedEnd)).map((r) => r.id);
  t.ok(across.length > 0, `${across.length} spans cross a member boundary`);
  for (const id of across) t.ok(declined.includes(id), `span ${id} across members: declined`);
  t.ok(streamed > 0, `${streamed} spans inside one member streamed`);
});

t.test('corrupt data, a wrong size, destroy: declined', async (t) => {
  const l = await layer(fx.doc, 64 * KiB);
  const r = l.ranges[3];
  const cp = l.checkpoints[3];
  const good = l.blob.subarray(r.compressedStart, r.compressedEnd);
  const size = r.uncompressedEnd - r.uncompressedStart;
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0x55;
  bad[(bad.length >> 1) + 1] ^= 0xaa;
  t.equal((await stream(cp, bad, size, false, 1)).ok, false, 'flipped bytes');
  t.equal((await stream(cp, good, size - 1, false, 2)).ok, false, 'output longer than the span');
  t.equal((await stream(cp, good, size + 1, false, 3)).ok, false, 'output shorter than the span');
  t.equal((await stream(cp, good.subarray(0, good.length >> 1), size, false, 4)).ok, false, 'bytes cut short');
  t.equal((await stream(cp, bad, size, false, 1, true)).ok, false, 'flipped bytes, into a buffer');
  t.equal((await stream(cp, good, size - 1, false, 2, true)).ok, false, 'output longer than the span, into a buffer');
  const s = new SpanInflateStream(cp, size, false, () => undefined);
  s.push(good.subarray(0, 1000));
  s.destroy();
  s.push(good.subarray(1000));
  t.equal(await s.end(), false, 'destroyed');
});

t.test('the last span drops output past the layer end', async (t) => {
  const l = await layer(fx.doc, 64 * KiB);
  const r = l.ranges[5];
  const size = r.uncompressedEnd - r.uncompressedStart;
  const got = await stream(l.checkpoints[5], l.blob.subarray(r.compressedStart, r.compressedEnd), size - 100, true, 5);
  t.equal(got.ok, true);
  t.equal(sha256(got.out), sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd - 100)));
  // Into a buffer with 65 bytes of room: the padding overflows it and still goes nowhere.
  const into = await stream(l.checkpoints[5], l.blob.subarray(r.compressedStart, r.compressedEnd), size - 100, true, 5, true);
  t.equal(into.ok, true, 'into a buffer');
  t.equal(sha256(into.out), sha256(l.plain.subarray(r.uncompressedStart, r.uncompressedEnd - 100)));
});
