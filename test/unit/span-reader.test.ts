import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SociError } from '../../errors/errors.js';
import type { BodyAlloc } from '../../fetcher/registry/http.js';
import { fileSpanSource, type SpanSource } from '../../fetcher/span-source.js';
import { BackgroundFetcher } from '../../fs/background-fetcher.js';
import { FetchLimiter } from '../../fs/fetch-limiter.js';
import { InflateWorkers } from '../../fs/inflate-workers.js';
import type { BodyTiming, LinkCostModel } from '../../fs/link-estimate.js';
import { SpanCache } from '../../fs/span-cache.js';
import { LayerSpanReader } from '../../fs/span-reader.js';
import { spansOfRange } from '../../ztoc/layer-spans.js';
import { buildSpanLayer, type SpanLayer } from '../helpers/span-layer.js';
import { tempDirFor } from '../helpers/tmp.js';

const KiB = 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A real file source with knobs: every request is logged; delay, corruption and failure can be switched on. */
class TestSource implements SpanSource {
  requests: [number, number][] = [];
  delayMs = 0;
  corrupt = 0;
  fail: Error | undefined;
  stall = false;
  inFlight = 0;
  maxInFlight = 0;
  /** Bodies arrive in pieces, told to the allocator as a registry response's would be. */
  trickle = false;
  /** Bodies begun and cut halfway (garbage so far) before the real one, as a retrying client does. */
  cutBodies = 0;
  constructor(private readonly inner: SpanSource) {}

  async fetchCompressed(start: number, end: number, signal?: AbortSignal, alloc?: BodyAlloc): Promise<Buffer> {
    if (this.trickle) return this.arrive(start, end, alloc ?? Buffer.allocUnsafe);
    return this.fetchWhole(start, end, signal, alloc);
  }

  private async arrive(start: number, end: number, alloc: BodyAlloc): Promise<Buffer> {
    this.requests.push([start, end]);
    const whole = await this.inner.fetchCompressed(start, end);
    for (; this.cutBodies > 0; this.cutBodies--) {
      alloc(whole.length).fill(0x5a, 0, whole.length >> 1);
      alloc.received?.(whole.length >> 1);
    }
    if (this.corrupt > 0) {
      this.corrupt--;
      whole[Math.floor(whole.length / 2)] ^= 0xff;
    }
    const out = alloc(whole.length);
    for (let at = 0; at < whole.length; ) {
      const n = Math.min(5000, whole.length - at);
      out.set(whole.subarray(at, at + n), at);
      at += n;
      alloc.received?.(at);
      await new Promise((r) => setImmediate(r));
    }
    return out;
  }

  private async fetchWhole(start: number, end: number, signal?: AbortSignal, alloc?: BodyAlloc): Promise<Buffer> {
    this.requests.push([start, end]);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.stall) await new Promise((_r, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
      if (this.delayMs) await sleep(this.delayMs, undefined, { signal });
      if (this.fail) throw this.fail;
      const b = await this.inner.fetchCompressed(start, end, signal, alloc);
      if (this.corrupt > 0) {
        this.corrupt--;
        b[Math.floor(b.length / 2)] ^= 0xff;
      }
      return b;
    } finally {
      this.inFlight--;
    }
  }

  bytes(): number {
    return this.requests.reduce((n, [s, e]) => n + e - s, 0);
  }
}

const dir = await tempDirFor(t, 'span-reader-');
// 64 KiB spans over ~1.3 MiB: files inside one span, across spans, and many spans long.
const layer: SpanLayer = await buildSpanLayer(dir, [
  { name: 'small', size: 3000 },
  { name: 'big', size: 600 * KiB },
  { name: 'mid', size: 150 * KiB },
  { name: 'tail', size: 500 * KiB },
], 64 * KiB);

interface Setup {
  src: TestSource;
  cache: SpanCache;
  reader: LayerSpanReader;
  cacheDir: string;
  errors: string[];
  decoder?: InflateWorkers;
}

interface SetupOptions {
  workers?: boolean;
  limit?: number;
  timeoutMs?: number;
  verificationRetries?: number;
  memory?: number;
  cacheDir?: string;
  readahead?: number;
  link?: LinkCostModel;
  nextSpan?: boolean;
  nextSpans?: string[];
}

async function setup(t: Test, o: SetupOptions = {}): Promise<Setup> {
  const cacheDir = o.cacheDir ?? (await tempDirFor(t, 'span-reader-cache-'));
  const cache = await SpanCache.open({ directory: cacheDir, diskMaxBytes: 1 << 30, memoryMaxBytes: o.memory ?? 64 << 20 });
  const src = new TestSource(fileSpanSource(layer.blobPath));
  const errors: string[] = [];
  t.teardown(() => cache.close());
  const decoder = o.workers ? new InflateWorkers(cache.buffers, 2) : undefined;
  if (decoder) t.teardown(() => decoder.close());
  const logger = { info: () => undefined, warn: () => undefined, error: (_o: object, msg: string) => void errors.push(msg) };
  const reader = new LayerSpanReader({
    layerDigest: layer.digest, spans: layer.spans, source: src, cache, limiter: new FetchLimiter(o.limit ?? 8), logger,
    fetchTimeoutMs: o.timeoutMs, verificationRetries: o.verificationRetries, readaheadSpans: o.readahead ?? 0, decoder,
    link: o.link, nextSpan: o.nextSpan, metrics: { nextSpan: (e) => void o.nextSpans?.push(e) },
  });
  return { src, cache, reader, cacheDir, errors, decoder };
}

function fileBytes(name: string): Buffer {
  const f = layer.files.get(name)!;
  return layer.tar.subarray(f.offset, f.offset + f.size);
}

function spanCount(name: string): number {
  const f = layer.files.get(name)!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  return end - start + 1;
}

function spanBytes(name: string): number {
  const f = layer.files.get(name)!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  return layer.spans.ranges[end].compressedEnd - layer.spans.ranges[start].compressedStart;
}

t.ok(layer.spans.ranges.length >= 15, `fixture has ${layer.spans.ranges.length} spans`);

// The read path with spans inflated on this thread and on worker threads into recycled buffers.
for (const workers of [false, true]) {
  const on = workers ? ' (inflate worker threads)' : '';

  t.test(`every file and odd ranges read back exactly as in the tar${on}`, async (t) => {
    const { reader } = await setup(t, { workers });
    for (const name of layer.files.keys()) {
      const f = layer.files.get(name)!;
      t.equal(sha(await reader.read(f.offset, f.size)), sha(fileBytes(name)), name);
    }
    const size = layer.tar.length;
    t.equal(reader.uncompressedSize, layer.ztoc.uncompressedArchiveSize);
    for (const [off, len] of [[0, 1], [65535, 2], [100_000, 300_000], [reader.uncompressedSize - 10, 100]]) {
      const want = layer.tar.subarray(off, Math.min(off + len, reader.uncompressedSize));
      t.equal(sha(await reader.read(off, len)), sha(want), `range ${off}+${len}`);
    }
    t.equal((await reader.read(size + 10, 5)).length, 0, 'past the end: empty');
    await t.rejects(reader.read(-1, 5), SociError);
  });

  t.test(`a memory cache of two spans: concurrent readers over many spans get the right bytes while buffers are reused${on}`, async (t) => {
    const r = layer.spans.ranges;
    const biggest = Math.max(...r.map((x) => x.uncompressedEnd - x.uncompressedStart));
    const { reader } = await setup(t, { workers, memory: biggest * 2, readahead: 2 });
    // The spans end at the tar's end-of-archive blocks; reads stop there.
    const size = r.at(-1)!.uncompressedEnd;
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 4; round++) {
      // Streams through the layer (whole-span loads, readahead) mixed with lone reads anywhere.
      const streams = [0, 1, 2].map(async (k) => {
        for (let at = Math.floor((k * size) / 3); at < size; at += 16 * KiB) {
          const got = await reader.read(at, 16 * KiB);
          if (sha(got) !== sha(layer.tar.subarray(at, Math.min(at + 16 * KiB, size)))) throw new Error(`wrong bytes at ${at}`);
        }
      });
      const lone = Array.from({ length: 40 }, async () => {
        const at = rand(size);
        const got = await reader.read(at, 5000);
        if (sha(got) !== sha(layer.tar.subarray(at, Math.min(at + 5000, size)))) throw new Error(`wrong bytes at ${at}`);
      });
      await Promise.all([...streams, ...lone]);
      await reader.diskWritesDone();
    }
    t.pass('every read matched the layer');
  });

  t.test(`integrity: a corrupt span is an error naming layer, span and mismatch; not cached; a later read works${on}`, async (t) => {
    const { src, reader, cache, cacheDir, errors } = await setup(t, { workers });
    const f = layer.files.get('small')!;
    const { start } = spansOfRange(layer.spans, f.offset, f.size);
    src.corrupt = 1;
    const err = await reader.read(f.offset, f.size).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof SociError);
    const msg = (err as Error).message;
    t.match(msg, `layer ${layer.digest} span ${start}`);
    t.match(msg, `digest mismatch: expected ${layer.spans.spanDigests[start]}`);
    t.equal(errors.length, 1, 'one error log line');
    t.match(errors[0], 'digest mismatch');
    t.equal(cache.hasOnDisk(layer.digest, start), false);
    t.equal(cache.getMemory(layer.digest, start), undefined);
    t.same(await readdir(cacheDir), [], 'nothing on disk');
    t.equal(sha(await reader.read(f.offset, f.size)), sha(fileBytes('small')), 'retry succeeds');
    t.equal(src.requests.length, 2);
  });

  t.test(`verification retries refetch a bad span${on}`, async (t) => {
    const { src, reader } = await setup(t, { workers, verificationRetries: 1 });
    const f = layer.files.get('small')!;
    src.corrupt = 1;
    t.equal(sha(await reader.read(f.offset, f.size)), sha(fileBytes('small')));
    t.equal(src.requests.length, 2);
  });
}

t.test('uncompressed layer: spans kept in memory stay intact while fetch buffers are reused', async (t) => {
  const dir = await tempDirFor(t, 'span-reader-plain-');
  const plain = await buildSpanLayer(dir, [{ name: 'a', size: 300 * KiB }, { name: 'b', size: 700 * KiB }], 64 * KiB, 'none');
  const r = plain.spans.ranges;
  const cache = await SpanCache.open({ directory: join(dir, 'cache'), diskMaxBytes: 1 << 30, memoryMaxBytes: 6 * 64 * KiB });
  t.teardown(() => cache.close());
  const src = new TestSource(fileSpanSource(plain.blobPath));
  const reader = new LayerSpanReader({ layerDigest: plain.digest, spans: plain.spans, source: src, cache, limiter: new FetchLimiter(4), readaheadSpans: 0 });
  const size = r.at(-1)!.uncompressedEnd;
  // Every span fetched on its own, then all read again from memory and disk.
  for (let round = 0; round < 2; round++) {
    for (const x of r) {
      const got = await reader.read(x.uncompressedStart, x.uncompressedEnd - x.uncompressedStart);
      t.equal(sha(got), sha(plain.tar.subarray(x.uncompressedStart, x.uncompressedEnd)), `round ${round}: span at ${x.uncompressedStart}`);
    }
    await reader.diskWritesDone();
  }
  t.equal(src.requests.length, r.length, 'each span fetched once');
  t.equal(sha(await reader.read(0, size)), sha(plain.tar.subarray(0, size)), 'the whole layer');
});

t.test('spans inflated while their bytes arrive: right bytes, a cut body starts over, a bad body is a digest mismatch', async (t) => {
  const { src, reader, errors, decoder } = await setup(t, { workers: true });
  if (!decoder) return t.fail('no decoder');
  const calls = { begin: 0, decode: 0 };
  const [begin, decode] = [decoder.begin.bind(decoder), decoder.decode.bind(decoder)];
  decoder.begin = (...a) => {
    const b = begin(...a);
    if (b) calls.begin++;
    return b;
  };
  decoder.decode = (...a) => (calls.decode++, decode(...a));
  src.trickle = true;
  for (const name of ['small', 'big']) {
    const f = layer.files.get(name)!;
    t.equal(sha(await reader.read(f.offset, f.size)), sha(fileBytes(name)), name);
  }
  // Up to two spans arrive at once on two threads; any more are decoded whole.
  t.ok(calls.begin >= 2, `${calls.begin} spans begun on arrival`);
  t.equal(calls.begin + calls.decode, spanCount('small') + spanCount('big'), 'the rest decoded whole');
  calls.decode = 0;
  src.cutBodies = 2;
  const before = src.requests.length;
  const mid = layer.files.get('mid')!;
  t.equal(sha(await reader.read(mid.offset, mid.size)), sha(fileBytes('mid')), 'mid, after two cut bodies');
  const fetched = src.requests.slice(before).reduce((n, [from, to]) => n + layer.spans.ranges.filter((r) => r.compressedStart >= from && r.compressedEnd <= to).length, 0);
  t.ok(fetched > 0, `${fetched} spans fetched for mid`);
  t.equal(calls.decode, fetched, 'after a cut body the spans are decoded whole');
  src.corrupt = 1;
  const tail = layer.files.get('tail')!;
  await t.rejects(reader.read(tail.offset + 300 * KiB, 100), { message: /digest mismatch/ });
  t.match(errors.join('\n'), /digest mismatch/);
  t.equal(sha(await reader.read(tail.offset, tail.size)), sha(fileBytes('tail')), 'tail, fetched again');
});

t.test('laziness: one small file fetches only its span, once', async (t) => {
  const { src, reader, cache } = await setup(t);
  const f = layer.files.get('small')!;
  const got = await reader.read(f.offset, f.size);
  t.equal(sha(got), sha(fileBytes('small')));
  t.equal(src.requests.length, 1);
  t.equal(src.bytes(), spanBytes('small'), 'exactly the covering span bytes');
  t.ok(src.bytes() < layer.blob.length / 10);
  await reader.read(f.offset, f.size);
  t.equal(src.requests.length, 1, 'second read served from cache');
  const { start } = spansOfRange(layer.spans, f.offset, f.size);
  await reader.diskWritesDone();
  t.ok(cache.hasOnDisk(layer.digest, start), 'span written to disk');
});

t.test('readahead: a reader walking through spans gets the next spans loaded ahead, a lone read does not', async (t) => {
  const { src, reader } = await setup(t, { readahead: 3 });
  const r = layer.spans.ranges;
  const f = layer.files.get('big')!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  const chunk = 16 * KiB;
  // 128 KiB-style reads through the file, in order, as the kernel sends them.
  const readThrough = async (from: number, to: number): Promise<void> => {
    for (let at = from; at < to; at += chunk) await reader.read(at, Math.min(chunk, to - at));
  };
  await readThrough(f.offset, r[start + 1].uncompressedEnd);
  t.equal(src.requests.length, 2, 'two spans read one after the other: no readahead yet');
  t.equal(sha(await reader.read(r[start + 2].uncompressedStart, chunk)), sha(layer.tar.subarray(r[start + 2].uncompressedStart, r[start + 2].uncompressedStart + chunk)));
  t.same(src.requests.slice(2), [
    [r[start + 2].compressedStart, r[start + 2].compressedEnd],
    [r[start + 3].compressedStart, r[start + 5].compressedEnd],
  ], 'the third span in a row: its own GET first, then one GET for the 3 spans after it');
  src.requests = [];
  await readThrough(r[start + 2].uncompressedStart + chunk, r[start + 5].uncompressedEnd);
  t.ok(end >= start + 7);
  t.same(src.requests, [[r[start + 6].compressedStart, r[start + 7].compressedEnd]],
    'spans read ahead were served from memory; the window moved on once two of its three spans were missing, with one GET for both');

  const lone = await setup(t, { readahead: 3 });
  const k = end + 1;
  for (let at = r[k].uncompressedEnd - 3 * chunk; at < r[k + 1].uncompressedStart + 3 * chunk; at += chunk) await lone.reader.read(at, chunk);
  t.same(lone.src.requests, [[r[k].compressedStart, r[k].compressedEnd], [r[k + 1].compressedStart, r[k + 1].compressedEnd]],
    'reads across one span boundary fetch only those two spans');
});

t.test('cached spans: a first read takes its range from disk, the next read into the span loads it whole', async (t) => {
  const r = layer.spans.ranges;
  const spanSize = (id: number): number => r[id].uncompressedEnd - r[id].uncompressedStart;
  const biggest = Math.max(...r.map((_x, id) => spanSize(id)));
  const first = await setup(t, { memory: Math.floor(biggest * 1.5) });
  const { cache } = first;
  const a = 3;
  const b = r.length - 2;
  await first.reader.read(r[a].uncompressedStart, 10);
  await first.reader.read(r[b].uncompressedStart, 10);
  await first.reader.diskWritesDone();
  // A new reader over the same cache: nothing read recently.
  const reader = new LayerSpanReader({ layerDigest: layer.digest, spans: layer.spans, source: first.src, cache, limiter: new FetchLimiter(8) });
  t.notOk(cache.hasInMemory(layer.digest, a), 'span a left memory (cap of one span)');
  t.ok(cache.hasOnDisk(layer.digest, a));
  const at = r[a].uncompressedStart + 1000;
  t.equal(sha(await reader.read(at, 4096)), sha(layer.tar.subarray(at, at + 4096)));
  t.notOk(cache.hasInMemory(layer.digest, a), 'a lone read: only its range was read');
  t.equal(sha(await reader.read(at + 4096, 4096)), sha(layer.tar.subarray(at + 4096, at + 8192)));
  t.ok(cache.hasInMemory(layer.digest, a), 'the second read loaded the span');
  t.equal(first.src.requests.length, 2, 'nothing fetched again');
});

t.test('readahead: scattered reads over consecutive spans (page faults in a big library) fetch only what they touch', async (t) => {
  const { src, reader } = await setup(t, { readahead: 3 });
  const r = layer.spans.ranges;
  const f = layer.files.get('big')!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  // One 4 KiB read near the middle of each span of the file, in order.
  for (let id = start + 1; id < end; id++) {
    const at = Math.floor((r[id].uncompressedStart + r[id].uncompressedEnd) / 2);
    t.equal(sha(await reader.read(at, 4096)), sha(layer.tar.subarray(at, at + 4096)));
  }
  t.same(src.requests, r.slice(start + 1, end).map((x) => [x.compressedStart, x.compressedEnd]), 'one GET per touched span, nothing ahead');
});

t.test('metrics: one duration per GET, digest mismatches told apart', async (t) => {
  const { src, cache } = await setup(t);
  const seen: string[] = [];
  const reader = new LayerSpanReader({
    layerDigest: layer.digest, spans: layer.spans, source: src, cache, limiter: new FetchLimiter(8),
    metrics: {
      fetchDuration: (p, s) => void seen.push(`duration ${p} ${s >= 0 && s < 10}`),
      fetchFailed: (p, result) => void seen.push(`failed ${p} ${result}`),
    },
  });
  const f = layer.files.get('small')!;
  await reader.read(f.offset, f.size);
  src.corrupt = 1;
  const m = layer.files.get('mid')!;
  await t.rejects(reader.read(m.offset, 10), { message: /digest mismatch/ });
  t.same(seen, ['duration demand true', 'duration demand true', 'failed demand digest_mismatch']);
});

/** A link whose verdict the test sets: worth it when the chance exceeds `threshold`; records what it was told and asked. */
class FixedLink implements LinkCostModel {
  bodies: BodyTiming[] = [];
  misses = 0;
  asked: number[] = [];
  constructor(public threshold: number) {}
  noteBody(t: BodyTiming): void {
    this.bodies.push(t);
  }
  noteMiss(): void {
    this.misses++;
  }
  worthFetching(_bytes: number, chance: number): boolean {
    this.asked.push(chance);
    return chance > this.threshold;
  }
}

/** Reads 100 bytes from the middle of span `id`; checks them against the tar. */
async function readSpan(t: Test, reader: LayerSpanReader, id: number): Promise<void> {
  const r = layer.spans.ranges[id];
  const at = (r.uncompressedStart + r.uncompressedEnd) >> 1;
  t.equal(sha(await reader.read(at, 100)), sha(layer.tar.subarray(at, at + 100)), `span ${id} read right`);
}

t.test('next span: when the link says so, a lone miss takes the next span along in its GET, and reading it needs no GET', async (t) => {
  const r = layer.spans.ranges;
  const link = new FixedLink(0);
  const events: string[] = [];
  const { src, reader } = await setup(t, { link, nextSpan: true, nextSpans: events });
  await readSpan(t, reader, 2);
  t.same(src.requests, [[r[2].compressedStart, r[3].compressedEnd]], 'one GET for spans 2 and 3');
  t.same(link.asked, [0.5], 'asked once, at even odds before any record');
  t.equal(link.misses, 1, 'the miss was timed');
  await readSpan(t, reader, 3);
  t.equal(src.requests.length, 1, 'span 3 came along');
  t.same(events, ['fetched', 'read']);
  src.trickle = true;
  await readSpan(t, reader, 6);
  t.same(src.requests[1], [r[6].compressedStart, r[7].compressedEnd]);
  t.equal(link.bodies.length, 1, 'a body that reports its arrival is timed');
  t.equal(link.bodies[0].bytes, r[7].compressedEnd - r[6].compressedStart);
  t.equal(link.bodies[0].tailBytes, link.bodies[0].bytes - 5000, 'the tail is what came after the first piece');
  t.same(link.asked, [0.5, 2 / 3], 'one next span fetched and read: the chance rose');
});

t.test('next span: not when the link says no, when it is cached, at the last span, or with the option off', async (t) => {
  const r = layer.spans.ranges;
  const last = r.length - 1;
  await t.test('costly link', async (t) => {
    const link = new FixedLink(1);
    const { src, reader } = await setup(t, { link, nextSpan: true });
    await readSpan(t, reader, 2);
    t.same(src.requests, [[r[2].compressedStart, r[2].compressedEnd]]);
    t.same(link.asked, [0.5]);
  });
  await t.test('option off', async (t) => {
    const link = new FixedLink(0);
    const { src, reader } = await setup(t, { link, nextSpan: false });
    await readSpan(t, reader, 2);
    t.same(src.requests, [[r[2].compressedStart, r[2].compressedEnd]]);
    t.same(link.asked, []);
    t.equal(link.misses, 1, 'the link is still measured');
  });
  await t.test('next span cached, or past the end', async (t) => {
    const link = new FixedLink(0);
    const { src, reader, cache } = await setup(t, { link, nextSpan: true });
    await readSpan(t, reader, 5);
    await readSpan(t, reader, 4);
    await reader.diskWritesDone();
    t.ok(cache.hasOnDisk(layer.digest, 5), 'span 5 is cached');
    await readSpan(t, reader, last);
    t.same(src.requests, [[r[5].compressedStart, r[6].compressedEnd], [r[4].compressedStart, r[4].compressedEnd], [r[last].compressedStart, r[last].compressedEnd]]);
  });
});

t.test('next span: a reader of a span still loading joins that GET and takes nothing along', async (t) => {
  const r = layer.spans.ranges;
  const link = new FixedLink(0);
  const { src, reader } = await setup(t, { link, nextSpan: true });
  src.delayMs = 100;
  const first = readSpan(t, reader, 2);
  await readSpan(t, reader, 3);
  await first;
  t.same(src.requests, [[r[2].compressedStart, r[3].compressedEnd]], 'one GET, span 4 not taken along');
  t.same(link.asked, [0.5]);
});

t.test('next span: a span loaded whole from disk is no miss and takes nothing along', async (t) => {
  const r = layer.spans.ranges;
  const link = new FixedLink(1);
  const { src, reader } = await setup(t, { link, nextSpan: true, memory: 0 });
  await readSpan(t, reader, 4);
  await reader.diskWritesDone();
  link.threshold = 0;
  // The second read into span 4 loads it whole: from its file, not the registry.
  await readSpan(t, reader, 4);
  await readSpan(t, reader, 4);
  t.same(src.requests, [[r[4].compressedStart, r[4].compressedEnd]], 'no GET for span 5');
});

t.test('next span: spans taken along and never read lower the chance the link is asked about', async (t) => {
  const r = layer.spans.ranges;
  const link = new FixedLink(0.4);
  const { src, reader } = await setup(t, { link, nextSpan: true });
  await readSpan(t, reader, 0);
  await readSpan(t, reader, 5);
  t.same(link.asked, [1 / 2, 1 / 3], 'span 1 came along and was not read');
  t.same(src.requests.slice(1), [[r[5].compressedStart, r[5].compressedEnd]], 'at 1/3, span 6 stayed behind');
  await readSpan(t, reader, 1);
  await readSpan(t, reader, 9);
  t.same(link.asked.at(-1), 2 / 3, 'span 1 was read after all');
  t.same(src.requests.at(-1), [r[9].compressedStart, r[10].compressedEnd]);
});

t.test('a read across several missing spans is one coalesced GET', async (t) => {
  const { src, reader } = await setup(t);
  const f = layer.files.get('big')!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  t.ok(end - start >= 8, `big spans ${end - start + 1} spans`);
  // Warm one span in the middle: the read then needs two runs, around it.
  const mid = Math.floor((start + end) / 2);
  await reader.fetchSpan(mid, 'demand');
  src.requests = [];
  t.equal(sha(await reader.read(f.offset, f.size)), sha(fileBytes('big')));
  const r = layer.spans.ranges;
  t.same(src.requests, [[r[start].compressedStart, r[mid - 1].compressedEnd], [r[mid + 1].compressedStart, r[end].compressedEnd]]);
});

t.test('single-flight: 20 concurrent readers of one span cause one fetch', async (t) => {
  const { src, reader } = await setup(t);
  src.delayMs = 100;
  const base = layer.spans.ranges[4].uncompressedStart;
  const reads = Array.from({ length: 20 }, (_, i) => reader.read(base + i * 100, 1000));
  const out = await Promise.all(reads);
  out.forEach((b, i) => t.equal(sha(b), sha(layer.tar.subarray(base + i * 100, base + i * 100 + 1000)), `reader ${i}`));
  t.equal(src.requests.length, 1);
});

t.test('different spans fetch in parallel up to the limit', async (t) => {
  const ids = [1, 3, 5, 7, 9, 11, 13, 15];
  const readSpans = async (reader: LayerSpanReader): Promise<number> => {
    const t0 = Date.now();
    const out = await Promise.all(ids.map((id) => reader.read(layer.spans.ranges[id].uncompressedStart, 100)));
    out.forEach((b, i) => t.equal(sha(b), sha(layer.tar.subarray(layer.spans.ranges[ids[i]].uncompressedStart, layer.spans.ranges[ids[i]].uncompressedStart + 100))));
    return Date.now() - t0;
  };
  const wide = await setup(t, { limit: 8 });
  wide.src.delayMs = 300;
  const fast = await readSpans(wide.reader);
  t.equal(wide.src.maxInFlight, 8);
  t.ok(fast < 1200, `8 spans with limit 8 took ${fast} ms`);
  const narrow = await setup(t, { limit: 2 });
  narrow.src.delayMs = 300;
  const slow = await readSpans(narrow.reader);
  t.equal(narrow.src.maxInFlight, 2);
  t.ok(slow >= 1150, `8 spans with limit 2 took ${slow} ms`);
});

t.test('source errors and timeouts fail the read, then a later read retries', async (t) => {
  const { src, reader, errors } = await setup(t, { timeoutMs: 300 });
  const f = layer.files.get('mid')!;
  src.fail = new Error('connection refused');
  await t.rejects(reader.read(f.offset, 10), { message: new RegExp(`^layer ${layer.digest} span \\d+: connection refused$`), kind: 'unavailable' });
  src.fail = undefined;
  src.stall = true;
  const t0 = Date.now();
  await t.rejects(reader.read(f.offset, 10), { message: /timed out/ });
  const took = Date.now() - t0;
  t.ok(took >= 280 && took < 2000, `timed out after ${took} ms`);
  src.stall = false;
  t.equal(sha(await reader.read(f.offset, 10)), sha(fileBytes('mid').subarray(0, 10)));
  t.equal(errors.length, 2);
});

t.test('a corrupted cache file found after a restart is refetched, never served', async (t) => {
  const first = await setup(t);
  const f = layer.files.get('small')!;
  const { start } = spansOfRange(layer.spans, f.offset, f.size);
  await first.reader.read(f.offset, f.size);
  await first.reader.diskWritesDone();
  const layerDir = join(first.cacheDir, layer.digest.slice(7));
  const [file] = await readdir(layerDir);
  const r = layer.spans.ranges[start];
  const wrong = Buffer.from(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd));
  wrong[f.offset - r.uncompressedStart + 5] ^= 0x20;
  await writeFile(join(layerDir, file), wrong);

  const second = await setup(t, { cacheDir: first.cacheDir });
  t.ok(second.cache.hasOnDisk(layer.digest, start), 'the file is indexed on start');
  t.equal(sha(await second.reader.read(f.offset, f.size)), sha(fileBytes('small')), 'correct bytes');
  t.equal(second.src.requests.length, 1, 'refetched');
});

t.test('limiter: demand before background, background never takes the last slot, promotion', async (t) => {
  const limiter = new FetchLimiter(2);
  const order: string[] = [];
  const gate: (() => void)[] = [];
  const job = (name: string) => () => new Promise<void>((resolve) => {
    order.push(name);
    gate.push(resolve);
  });
  const b1 = limiter.run('background', job('b1'));
  const b2 = limiter.schedule('background', job('b2'));
  const b3 = limiter.schedule('background', job('b3'));
  t.same(order, ['b1'], 'one slot left for demand');
  const d1 = limiter.run('demand', job('d1'));
  t.same(order, ['b1', 'd1']);
  const d2 = limiter.run('demand', job('d2'));
  b3.promote();
  gate.shift()!(); // b1 done
  await b1;
  await sleep(1);
  t.same(order, ['b1', 'd1', 'd2'], 'queued demand first');
  gate.shift()!(); // d1 done
  await d1;
  await sleep(1);
  t.same(order, ['b1', 'd1', 'd2', 'b3'], 'promoted b3 before b2');
  while (gate.length) gate.shift()!();
  await Promise.all([d2, b3.promise]);
  await sleep(1);
  gate.shift()!();
  await b2.promise;
  t.same(order, ['b1', 'd1', 'd2', 'b3', 'b2']);
  const ac = new AbortController();
  const blocked = [limiter.run('demand', job('x')), limiter.run('demand', job('y'))];
  const queued = limiter.run('demand', job('z'), ac.signal);
  ac.abort(new Error('gone'));
  await t.rejects(queued, { message: 'gone' });
  t.equal(limiter.queued, 0);
  while (gate.length) gate.shift()!();
  await Promise.all(blocked);
  t.notOk(order.includes('z'));
});

const bgConfig = { disable: false, silence_period_msec: 200, fetch_period_msec: 0, max_queue_size: 10, emit_metric_period_sec: 1, bandwidth_bytes_per_sec: 0 };

t.test('background fetcher: waits for quiet, then makes the whole layer local', async (t) => {
  const { src, reader, cache } = await setup(t, { memory: 0 });
  const bg = new BackgroundFetcher({ config: bgConfig });
  t.teardown(() => bg.stop());
  const f = layer.files.get('small')!;
  t.ok(bg.addLayer(reader));
  t.notOk(bg.addLayer(reader), 'a layer is added once');
  await reader.read(f.offset, f.size);
  await sleep(150);
  bg.noteDemand(layer.digest);
  await sleep(150);
  t.equal(src.requests.length, 1, 'nothing fetched while reads keep coming');
  for (let i = 0; i < 100 && !bg.progress(layer.digest)?.complete; i++) await sleep(50);
  const p = bg.progress(layer.digest)!;
  const total = layer.spans.ranges.length;
  // Spans resuming mid-byte share that byte with the previous span, so the sum exceeds the blob by a few bytes.
  const spanSum = layer.spans.ranges.reduce((n, r) => n + r.compressedEnd - r.compressedStart, 0);
  t.ok(spanSum >= layer.blob.length && spanSum < layer.blob.length + total);
  t.same(p, { layer: layer.digest, spansDone: total, spansTotal: total, bytesDone: spanSum, bytesTotal: spanSum, bytesFetched: spanSum - spanBytes('small'), failures: 0, complete: true });
  t.equal(src.bytes(), spanSum, 'every span fetched exactly once');
  for (let id = 0; id < total; id++) t.ok(cache.hasOnDisk(layer.digest, id));
  src.requests = [];
  t.equal(sha(await reader.read(0, layer.tar.length)), sha(layer.tar.subarray(0, reader.uncompressedSize)), 'whole layer from cache');
  t.equal(src.requests.length, 0);
});

t.test('background fetcher: bandwidth cap and clean cancellation', async (t) => {
  const { src, reader } = await setup(t, { memory: 0 });
  const rate = 400 * KiB;
  const bg = new BackgroundFetcher({ config: { ...bgConfig, silence_period_msec: 0, bandwidth_bytes_per_sec: rate } });
  bg.addLayer(reader);
  await sleep(1500);
  const fetched = bg.progress(layer.digest)!.bytesFetched;
  // One second of burst plus 1.5 s at the rate, plus one span in flight.
  t.ok(fetched <= rate * 2.5 + 70 * KiB, `${fetched} bytes in 1.5 s at ${rate} B/s`);
  t.ok(fetched >= rate, `made progress: ${fetched}`);
  src.delayMs = 10_000;
  await sleep(100);
  const t0 = Date.now();
  await bg.removeLayer(layer.digest);
  t.ok(Date.now() - t0 < 500, 'removeLayer does not wait for a slow fetch');
  t.equal(bg.progress(layer.digest), undefined);
  await bg.stop();
  t.notOk(bg.addLayer(reader), 'stopped fetcher takes no layers');
});
