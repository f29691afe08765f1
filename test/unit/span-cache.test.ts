import t from 'tap';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpanCache, type SpanCacheMetrics } from '../../fs/span-cache.js';
import { tempDirFor } from '../helpers/tmp.js';
import { fileContent } from '../helpers/span-layer.js';

const LAYER_A = `sha256:${'a'.repeat(64)}`;
const LAYER_B = `sha256:${'b'.repeat(64)}`;
const hex = (d: string): string => d.slice(7);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function counters(): SpanCacheMetrics & { c: Record<string, number> } {
  const c: Record<string, number> = {};
  const inc = (k: string, n = 1): void => void (c[k] = (c[k] ?? 0) + n);
  return {
    c,
    hit: (tier) => inc(`hit-${tier}`),
    miss: () => inc('miss'),
    evict: (tier, bytes) => { inc(`evict-${tier}`); inc(`evict-${tier}-bytes`, bytes); },
    drop: (reason) => inc(`drop-${reason}`),
  };
}

t.test('put then get: memory, disk, file layout', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const m = counters();
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 0, metrics: m });
  const data = fileContent(1, 10_000);
  t.equal(await cache.get(LAYER_A, 3, data.length), undefined, 'empty cache misses');
  await cache.put(LAYER_A, 3, data);
  t.same(await readdir(join(dir, hex(LAYER_A))), [`3-${sha(data)}`], 'one file named by span id and content digest');
  t.equal(sha(await readFile(join(dir, hex(LAYER_A), `3-${sha(data)}`))), sha(data));
  const got = await cache.get(LAYER_A, 3, data.length);
  t.equal(got && sha(got), sha(data), 'disk hit returns the bytes');
  t.equal(cache.getMemory(LAYER_A, 3), undefined, 'memory cache off');
  t.equal(await cache.get(LAYER_A, 3, data.length + 1), undefined, 'wrong expected size is a miss');
  t.equal(cache.hasOnDisk(LAYER_A, 3), false, 'and the file is dropped');
  t.same(await readdir(join(dir, hex(LAYER_A))), []);
  t.same(m.c, { miss: 2, 'hit-disk': 1, 'drop-size': 1 });
  t.equal(cache.diskBytes, 0);
});

t.test('memory LRU keeps hot spans within its byte cap', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const m = counters();
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 25_000, metrics: m });
  const spans = [0, 1, 2].map((i) => fileContent(10 + i, 10_000));
  for (const [i, s] of spans.entries()) await cache.put(LAYER_A, i, s);
  t.ok(cache.memoryBytes <= 25_000, `memory holds ${cache.memoryBytes} bytes`);
  t.equal(cache.getMemory(LAYER_A, 0), undefined, 'oldest span left memory');
  t.equal(sha(cache.getMemory(LAYER_A, 2)!), sha(spans[2]));
  const back = await cache.get(LAYER_A, 0, 10_000);
  t.equal(back && sha(back), sha(spans[0]), 'an evicted span comes back from disk');
  t.equal(sha(cache.getMemory(LAYER_A, 0)!), sha(spans[0]), 'and is hot again');
  t.equal(m.c['evict-memory'], 2);
});

t.test('disk cap evicts least recently used spans across layers', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const m = counters();
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 35_000, memoryMaxBytes: 0, metrics: m });
  const s = [0, 1, 2, 3].map((i) => fileContent(20 + i, 10_000));
  await cache.put(LAYER_A, 0, s[0]);
  await cache.put(LAYER_B, 0, s[1]);
  await cache.put(LAYER_A, 1, s[2]);
  await cache.get(LAYER_A, 0, 10_000); // touch: now B/0 is the least recently used
  await cache.put(LAYER_B, 1, s[3]);
  t.equal(cache.hasOnDisk(LAYER_B, 0), false, 'B/0 evicted');
  t.same((await readdir(join(dir, hex(LAYER_B)))).sort(), [`1-${sha(s[3])}`], 'its file is gone');
  for (const [l, id] of [[LAYER_A, 0], [LAYER_A, 1], [LAYER_B, 1]] as const) t.ok(cache.hasOnDisk(l, id), `${l.slice(7, 9)}/${id} kept`);
  t.equal(cache.diskBytes, 30_000);
  t.equal(m.c['evict-disk-bytes'], 10_000);
});

t.test('restart: index rebuilt, temp files removed, content verified on first read', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const first = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 1 << 20 });
  const good = fileContent(30, 20_000);
  const bad = fileContent(31, 20_000);
  await first.put(LAYER_A, 0, good);
  await first.put(LAYER_A, 1, bad);
  await first.put(LAYER_B, 7, good);
  await writeFile(join(dir, hex(LAYER_A), '.tmp-9-deadbeef'), 'partial');
  // Same size, one byte flipped: only a content check can tell.
  const badPath = join(dir, hex(LAYER_A), `1-${sha(bad)}`);
  const flipped = Buffer.from(bad);
  flipped[12_345] ^= 0x01;
  await writeFile(badPath, flipped);

  const m = counters();
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 1 << 20, metrics: m });
  t.equal(cache.diskSpans, 3);
  t.equal(cache.diskBytes, 60_000);
  t.notOk((await readdir(join(dir, hex(LAYER_A)))).some((n) => n.startsWith('.tmp-')), 'temp file removed on start');
  t.equal(await cache.get(LAYER_A, 1, 20_000), undefined, 'corrupted file is not served');
  await t.rejects(stat(badPath), { code: 'ENOENT' }, 'and is deleted');
  t.equal(cache.hasOnDisk(LAYER_A, 1), false);
  const ok = await cache.get(LAYER_A, 0, 20_000);
  t.equal(ok && sha(ok), sha(good), 'intact file served after its check');
  t.same(m.c, { 'drop-digest': 1, miss: 1, 'hit-disk': 1 });

  // A file cut short after the restart is caught by the size check.
  await truncate(join(dir, hex(LAYER_B), `7-${sha(good)}`), 100);
  t.equal(await cache.get(LAYER_B, 7, 20_000), undefined);
  t.equal(m.c['drop-size'], 1);
});

t.test('a lowered cap is applied on start', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const first = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 0 });
  for (let i = 0; i < 5; i++) await first.put(LAYER_A, i, fileContent(40 + i, 1000));
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 2500, memoryMaxBytes: 0 });
  t.equal(cache.diskSpans, 2);
  t.equal((await readdir(join(dir, hex(LAYER_A)))).length, 2);
});

t.test('removeLayer deletes only that layer, in memory and on disk', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 1 << 20 });
  const d = fileContent(50, 5000);
  await cache.put(LAYER_A, 0, d);
  await cache.put(LAYER_A, 1, d);
  await cache.put(LAYER_B, 0, d);
  // A put racing the removal must not leave a file behind.
  const racing = cache.put(LAYER_A, 2, fileContent(51, 5000));
  await cache.removeLayer(LAYER_A);
  await racing;
  t.same((await readdir(dir)).filter((n) => !n.startsWith('.')), [hex(LAYER_B)], 'layer A directory gone');
  t.equal(cache.getMemory(LAYER_A, 0), undefined);
  t.equal(cache.hasOnDisk(LAYER_A, 2), false);
  t.equal(cache.diskBytes, 5000);
  const b = await cache.get(LAYER_B, 0, 5000);
  t.equal(b && sha(b), sha(d));
  await cache.removeLayer(LAYER_A); // twice is fine
});

t.test('readInto copies a byte range of verified files only, into the caller\'s buffer', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const first = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 0 });
  const d = fileContent(60, 50_000);
  await first.put(LAYER_A, 4, d);
  const dest = Buffer.alloc(40_000, 0xee);
  t.equal(await first.readInto(LAYER_A, 4, 50_000, 1000, 31_000, dest, 5), true, 'written by this process: range served');
  t.equal(sha(dest.subarray(5, 30_005)), sha(d.subarray(1000, 31_000)));
  t.ok(dest.subarray(0, 5).every((x) => x === 0xee) && dest.subarray(30_005).every((x) => x === 0xee), 'nothing outside the target range written');
  t.equal(await first.readInto(LAYER_A, 4, 50_000, 0, 30_000, dest, 0), true, 'a second read on the kept-open file');
  t.equal(sha(dest.subarray(0, 30_000)), sha(d.subarray(0, 30_000)));
  t.equal(await first.readInto(LAYER_A, 4, 49_999, 0, 10, dest, 0), false, 'size mismatch: no range');
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 0 });
  t.equal(await cache.readInto(LAYER_A, 4, 50_000, 0, 10, dest, 0), false, 'after a restart: not before a full check');
  await cache.get(LAYER_A, 4, 50_000);
  t.equal(await cache.readInto(LAYER_A, 4, 50_000, 49_990, 50_000, dest, 0), true, 'checked: range served');
  t.equal(sha(dest.subarray(0, 10)), sha(d.subarray(49_990)));
  await cache.removeLayer(LAYER_A);
  t.equal(await cache.readInto(LAYER_A, 4, 50_000, 0, 10, dest, 0), false, 'layer removed: its open file is no longer read');
});

t.test('a span handed out by get() stays intact for its turn, though the memory cache reuses its buffer', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const size = 200_000;
  const spans = [0, 1, 2].map((i) => fileContent(100 + i, size));
  const first = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 30, memoryMaxBytes: 0 });
  for (const [i, d] of spans.entries()) await first.put(LAYER_A, i, d);
  // Room for one span in memory: every load from disk evicts the one before.
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 30, memoryMaxBytes: 1.5 * size });
  for (let round = 0; round < 3; round++) {
    const a = await cache.get(LAYER_A, 0, size);
    // Same turn: span 1 goes into memory (span 0 leaves it), span 2 is read from disk into a buffer.
    void cache.put(LAYER_A, 1, spans[1]);
    const c = cache.get(LAYER_A, 2, size);
    const before = a && sha(a);
    await c;
    t.equal(before, sha(spans[0]), `round ${round}: span 0 read right`);
    t.equal(a && sha(a), sha(spans[0]), `round ${round}: span 0 still intact after span 2 was read`);
  }
});

t.test('watchLayer: verified files announced (now and later), gone before eviction, removal and after a restart only once checked', async (t) => {
  const dir = await tempDirFor(t, 'span-cache-');
  const cache = await SpanCache.open({ directory: dir, diskMaxBytes: 25_000, memoryMaxBytes: 0 });
  const a0 = fileContent(1, 10_000);
  const a1 = fileContent(2, 10_000);
  await cache.put(LAYER_A, 0, a0);
  const events: string[] = [];
  const stop = cache.watchLayer(LAYER_A, {
    local: (id, file, size) => void events.push(`local ${id} ${file} ${size}`),
    gone: (id) => void events.push(`gone ${id}`),
  });
  t.same(events, [`local 0 0-${sha(a0)} 10000`], 'a file already on disk is announced at once');
  t.equal(cache.layerDirectory(LAYER_A), join(dir, hex(LAYER_A)));
  await cache.put(LAYER_A, 1, a1);
  await cache.put(LAYER_B, 0, fileContent(3, 10_000));
  t.same(events.slice(1), [`local 1 1-${sha(a1)} 10000`, 'gone 0'], 'a new file announced; the oldest evicted over the cap; other layers not');
  await cache.removeLayer(LAYER_A);
  t.same(events.slice(3), ['gone 1'], 'removal of the layer');
  stop();
  await cache.put(LAYER_A, 2, a0);
  t.equal(events.length, 4, 'nothing after the watch stopped');

  const reopened = await SpanCache.open({ directory: dir, diskMaxBytes: 1 << 20, memoryMaxBytes: 0 });
  const later: string[] = [];
  reopened.watchLayer(LAYER_A, { local: (id) => void later.push(`local ${id}`), gone: (id) => void later.push(`gone ${id}`) });
  t.same(later, [], 'files found on start are not announced before their digest is checked');
  t.ok(await reopened.get(LAYER_A, 2, a0.length));
  t.same(later, ['local 2'], 'announced once checked');
});
