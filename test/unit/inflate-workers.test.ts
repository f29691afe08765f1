import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SociError } from '../../errors/errors.js';
import { InflateWorkers } from '../../fs/inflate-workers.js';
import { SpanBuffers } from '../../fs/span-buffers.js';
import { inThreadDecoder, type DecodedSpan } from '../../fs/span-decoder.js';
import { spanCodec } from '../../ztoc/layer-spans.js';
import { buildSpanLayer } from '../helpers/span-layer.js';
import { tempDirFor } from '../helpers/tmp.js';

const KiB = 1024;
const hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const dir = await tempDirFor(t, 'inflate-workers-');
const layer = await buildSpanLayer(dir, [
  { name: 'a', size: 300 * KiB },
  { name: 'b', size: 90 * KiB },
  { name: 'c', size: 200 * KiB },
], 64 * KiB);
const blob = await readFile(layer.blobPath);
const compressedOf = (id: number): Buffer => {
  const r = layer.spans.ranges[id];
  return blob.subarray(r.compressedStart, r.compressedEnd);
};
const dataOf = (d: DecodedSpan): Buffer => {
  if (!('data' in d)) throw new Error(`unexpected digest mismatch ${d.mismatch}`);
  return d.data;
};

t.test('every span inflates to the tar bytes, into shared pool memory, with its sha256', async (t) => {
  const pool = new SpanBuffers(64 << 20);
  const workers = new InflateWorkers(pool, 2);
  t.teardown(() => workers.close());
  const ids = layer.spans.ranges.map((_r, id) => id);
  // All at once: more spans than threads, so some wait in the queue.
  const got = await Promise.all(ids.map((id) => workers.decode(spanCodec(layer.spans, id), layer.spans.spanDigests[id], compressedOf(id))));
  for (const id of ids) {
    const r = layer.spans.ranges[id];
    const d = got[id];
    const data = dataOf(d);
    t.equal(hex(data), hex(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd)), `span ${id}`);
    t.equal('sha256' in d && d.sha256, hex(data), `span ${id} digest`);
    t.ok(data.buffer instanceof SharedArrayBuffer, `span ${id} is pool memory`);
  }
  const inThread = dataOf(await inThreadDecoder.decode(spanCodec(layer.spans, 3), layer.spans.spanDigests[3], compressedOf(3)));
  t.equal(hex(inThread), hex(got[3] && dataOf(got[3])), 'same bytes as on this thread');
});

t.test('a digest mismatch reports the digest the bytes have; corrupt deflate data is invalid-argument; the thread lives on', async (t) => {
  const workers = new InflateWorkers(new SpanBuffers(64 << 20), 1);
  t.teardown(() => workers.close());
  const codec = spanCodec(layer.spans, 2);
  const bad = Buffer.from(compressedOf(2));
  bad[10] ^= 0xff;
  t.same(await workers.decode(codec, layer.spans.spanDigests[2], bad), { mismatch: `sha256:${hex(bad)}` });
  // Garbage that matches its own digest gets past verification and fails in zlib.
  const garbage = Buffer.alloc(compressedOf(2).length, 0xff);
  const err = await workers.decode(codec, `sha256:${hex(garbage)}`, garbage).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof SociError && err.kind === 'invalid-argument', 'invalid-argument');
  t.match((err as Error).message, `span at compressed offset ${codec.checkpoint.in}`);
  const r = layer.spans.ranges[2];
  const ok = dataOf(await workers.decode(codec, layer.spans.spanDigests[2], compressedOf(2)));
  t.equal(hex(ok), hex(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd)), 'next span on the same thread');
});

t.test('uncompressed spans are verified and copied', async (t) => {
  const workers = new InflateWorkers(new SpanBuffers(64 << 20), 1);
  t.teardown(() => workers.close());
  const raw = layer.tar.subarray(0, 50 * KiB);
  const codec = { algorithm: 'uncompressed' as const, checkpoint: { in: 0, out: 0, bits: 0, window: new Uint8Array(0) }, uncompressedSize: raw.length, lastSpan: false };
  t.equal(hex(dataOf(await workers.decode(codec, `sha256:${hex(raw)}`, raw))), hex(raw));
  await t.rejects(workers.decode({ ...codec, uncompressedSize: raw.length + 1 }, `sha256:${hex(raw)}`, raw), { kind: 'invalid-argument', message: /uncompressed span: 51200 bytes, expected 51201/ });
});

t.test('close: queued spans fail as unavailable, later ones too', async (t) => {
  const workers = new InflateWorkers(new SpanBuffers(64 << 20), 1);
  const codec = spanCodec(layer.spans, 0);
  const jobs = [0, 1, 2].map(() => workers.decode(codec, layer.spans.spanDigests[0], compressedOf(0)).then(() => 'done', (e: unknown) => (e as SociError).kind));
  await workers.close();
  const kinds = await Promise.all(jobs);
  t.same(kinds.slice(1), ['unavailable', 'unavailable'], 'queued behind the running one');
  t.ok(kinds[0] === 'done' || kinds[0] === 'unavailable', `running one: ${kinds[0]}`);
  const after = await workers.decode(codec, layer.spans.spanDigests[0], compressedOf(0)).then(() => undefined, (e: unknown) => e);
  t.ok(after instanceof SociError && after.kind === 'unavailable', 'after close: unavailable');
});

/** `compressed` copied into pool memory piece by piece, telling `received` as it goes. */
async function arrive(pool: SpanBuffers, compressed: Uint8Array, received: (n: number) => void, target = pool.take(compressed.length)): Promise<Buffer> {
  for (let at = 0; at < compressed.length; ) {
    const n = Math.min(7 * KiB + (at % 5000), compressed.length - at);
    target.set(compressed.subarray(at, at + n), at);
    at += n;
    received(at);
    await new Promise((r) => setImmediate(r));
  }
  return target;
}

// Streamed from the first piece on (a slow link), and inflated at once when complete (a fast one).
for (const streamAfterMs of [0, 60_000]) t.test(`spans begun while their bytes arrive (streamed after ${streamAfterMs} ms): same bytes and sha256 as whole decodes, at most one per thread at once`, async (t) => {
  const pool = new SpanBuffers(64 << 20);
  const workers = new InflateWorkers(pool, 2, streamAfterMs);
  t.teardown(() => workers.close());
  const ids = layer.spans.ranges.map((_r, id) => id);
  // A whole decode meanwhile.
  const whole = workers.decode(spanCodec(layer.spans, 1), layer.spans.spanDigests[1], compressedOf(1));
  const got: DecodedSpan[] = [];
  for (let i = 0; i < ids.length; i += 2) {
    const pair = ids.slice(i, i + 2);
    const inputs = pair.map((id) => pool.take(compressedOf(id).length));
    const begun = pair.map((id, k) => workers.begin(spanCodec(layer.spans, id), layer.spans.spanDigests[id], inputs[k]));
    if (!begun.every((b) => b !== undefined)) return t.fail(`begin declined spans ${pair}`);
    if (pair.length === 2) t.equal(workers.begin(spanCodec(layer.spans, 0), layer.spans.spanDigests[0], pool.take(10)), undefined, 'a third at once: decode it whole');
    await Promise.all(pair.map((id, k) => arrive(pool, compressedOf(id), (n) => begun[k]?.received(n), inputs[k])));
    got.push(...(await Promise.all(begun.map((b) => b?.result as Promise<DecodedSpan>))));
  }
  for (const id of ids) {
    const r = layer.spans.ranges[id];
    const d = got[id];
    t.equal(hex(dataOf(d)), hex(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd)), `span ${id}`);
    t.equal('sha256' in d && d.sha256, hex(dataOf(d)), `span ${id} digest`);
  }
  t.equal(hex(dataOf(await whole)), hex(dataOf(got[1])), 'the whole decode alongside');
});

t.test('a begun span: digest mismatch, cancel, and memory it cannot read in place', async (t) => {
  const pool = new SpanBuffers(64 << 20);
  const workers = new InflateWorkers(pool, 1);
  t.teardown(() => workers.close());
  const codec = spanCodec(layer.spans, 2);
  const bad = Buffer.from(compressedOf(2));
  bad[bad.length - 3] ^= 0xff;
  const input = pool.take(bad.length);
  const b2 = workers.begin(codec, layer.spans.spanDigests[2], input);
  if (!b2) return t.fail('begin declined');
  await arrive(pool, bad, (n) => b2.received(n), input);
  t.same(await b2.result, { mismatch: `sha256:${hex(bad)}` }, 'mismatch names the digest the bytes have');
  // Half its bytes, then called off (the client retries into another buffer).
  const half = pool.take(bad.length);
  const b = workers.begin(codec, layer.spans.spanDigests[2], half);
  if (!b) return t.fail('begin declined');
  half.set(compressedOf(2).subarray(0, bad.length >> 1));
  b.received(bad.length >> 1);
  b.cancel();
  const settled = await Promise.race([b.result.then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 200))]);
  t.equal(settled, 'pending', 'a cancelled span never settles');
  t.equal(workers.begin(codec, layer.spans.spanDigests[2], Buffer.from(compressedOf(2))), undefined, 'not shared memory: decode it whole');
  const r = layer.spans.ranges[2];
  t.equal(hex(dataOf(await workers.decode(codec, layer.spans.spanDigests[2], compressedOf(2)))), hex(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd)), 'the thread goes on');
});

t.test('close fails begun spans as unavailable', async (t) => {
  const pool = new SpanBuffers(64 << 20);
  const workers = new InflateWorkers(pool, 1);
  const b = workers.begin(spanCodec(layer.spans, 0), layer.spans.spanDigests[0], pool.take(compressedOf(0).length));
  if (!b) return t.fail('begin declined');
  b.received(100);
  await workers.close();
  await t.rejects(b.result, { kind: 'unavailable', message: /span inflate worker failed/ });
  t.equal(workers.begin(spanCodec(layer.spans, 0), layer.spans.spanDigests[0], pool.take(10)), undefined, 'none after close');
});
