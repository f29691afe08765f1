/** The span read path against a real docker-registry behind the fault proxy: laziness, concurrency, integrity, single-flight. */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SociError } from '../../errors/errors.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { registrySpanSource } from '../../fetcher/span-source.js';
import { FetchLimiter } from '../../fs/fetch-limiter.js';
import { SpanCache } from '../../fs/span-cache.js';
import { LayerSpanReader } from '../../fs/span-reader.js';
import { spansOfRange } from '../../ztoc/layer-spans.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushBlob } from '../helpers/registry-push.js';
import { startRegistry } from '../helpers/registry.js';
import { buildSpanLayer } from '../helpers/span-layer.js';
import { tempDirFor } from '../helpers/tmp.js';

const KiB = 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const dir = await tempDirFor(t, 'span-fetch-');
// ~12 MiB of tar in 256 KiB spans (~45 spans); eight 10 KiB files sit between big ones, each in a different span.
const files: { name: string; size: number }[] = [];
for (let i = 0; i < 8; i++) {
  files.push({ name: `${i}-big`, size: 1400 * KiB });
  files.push({ name: `${i}-small`, size: 10 * KiB });
}
const layer = await buildSpanLayer(dir, files, 256 * KiB);
const reg = await startRegistry();
t.teardown(() => reg.stop());
const proxy: FaultProxy = await startFaultProxy(reg.url);
t.teardown(() => proxy.stop());
await pushBlob(reg.url, 'soci/span', layer.blob);
const ref = parseReference(`${proxy.host}/soci/span:v1`);
const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.blob.length };
const BLOB_PATH = new RegExp(`/blobs/${layer.digest}`);

interface Setup {
  reader: LayerSpanReader;
  cache: SpanCache;
  cacheDir: string;
  errors: string[];
}

async function setup(t: Test, cacheDir?: string): Promise<Setup> {
  const dirForCache = cacheDir ?? (await tempDirFor(t, 'span-fetch-cache-'));
  const client = new RegistryClient({ retries: { max: 1, baseMs: 10, maxMs: 50 } });
  t.teardown(() => client.close());
  const cache = await SpanCache.open({ directory: dirForCache, diskMaxBytes: 1 << 30, memoryMaxBytes: 64 << 20 });
  const errors: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined, error: (_o: object, m: string) => void errors.push(m) };
  const reader = new LayerSpanReader({
    layerDigest: layer.digest, spans: layer.spans, source: registrySpanSource(client, ref, desc), cache,
    limiter: new FetchLimiter(8), logger, fetchTimeoutMs: 20_000,
  });
  proxy.setRules([]);
  proxy.clearLog();
  return { reader, cache, cacheDir: dirForCache, errors };
}

const blobGets = (): ReturnType<FaultProxy['log']> => proxy.log().filter((e) => e.method === 'GET' && BLOB_PATH.test(e.path));

function spanBytesOf(name: string): number {
  const f = layer.files.get(name)!;
  const { start, end } = spansOfRange(layer.spans, f.offset, f.size);
  return layer.spans.ranges[end].compressedEnd - layer.spans.ranges[start].compressedStart;
}

function fileOf(name: string): { offset: number; size: number; want: string } {
  const f = layer.files.get(name)!;
  return { offset: f.offset, size: f.size, want: sha(layer.tar.subarray(f.offset, f.offset + f.size)) };
}

t.ok(layer.spans.ranges.length >= 40, `${layer.spans.ranges.length} spans over a ${layer.blob.length}-byte blob`);

t.test('laziness: one small file fetches only the spans it covers', async (t) => {
  const { reader } = await setup(t);
  const f = fileOf('3-small');
  t.equal(sha(await reader.read(f.offset, f.size)), f.want);
  const gets = blobGets();
  t.equal(gets.length, 1, 'one range GET');
  t.equal(gets[0].status, 206);
  t.equal(proxy.bytesServed(), spanBytesOf('3-small'), `served ${proxy.bytesServed()} of ${layer.blob.length} bytes`);
  t.ok(proxy.bytesServed() < layer.blob.length / 20);
});

t.test('concurrency: 8 readers of 8 spans with a 1 s registry delay', async (t) => {
  const { reader } = await setup(t);
  proxy.setRules([{ method: 'GET', path: BLOB_PATH, action: { kind: 'delay', ms: 1000 } }]);
  const names = files.filter((f) => f.name.endsWith('-small')).map((f) => f.name);
  const spanIds = new Set(names.map((n) => spansOfRange(layer.spans, layer.files.get(n)!.offset, 1).start));
  t.equal(spanIds.size, 8, 'eight different spans');
  const t0 = Date.now();
  const out = await Promise.all(names.map((n) => reader.read(fileOf(n).offset, fileOf(n).size)));
  const took = Date.now() - t0;
  out.forEach((b, i) => t.equal(sha(b), fileOf(names[i]).want, names[i]));
  t.ok(took < 3000, `8 delayed reads took ${took} ms`);
  t.equal(blobGets().length, 8);
});

t.test('integrity: wrong bytes from the registry fail the read, nothing is cached, a later read succeeds', async (t) => {
  const { reader, cache, cacheDir, errors } = await setup(t);
  const f = fileOf('5-small');
  const { start } = spansOfRange(layer.spans, f.offset, f.size);
  proxy.setRules([{ method: 'GET', path: BLOB_PATH, action: { kind: 'corrupt', offset: 1000, count: 4 } }]);
  const err = await reader.read(f.offset, f.size).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof SociError, 'a SociError (EIO in the FUSE layer)');
  t.match((err as Error).message, `layer ${layer.digest} span ${start}: span ${start} digest mismatch: expected ${layer.spans.spanDigests[start]}, got sha256:`);
  t.match(errors.join('\n'), 'digest mismatch', 'logged');
  t.equal(cache.hasOnDisk(layer.digest, start), false);
  t.same(await readdir(cacheDir), [], 'nothing on disk');
  proxy.setRules([]);
  t.equal(sha(await reader.read(f.offset, f.size)), f.want, 'fault removed: correct bytes');
  t.equal(blobGets().length, 2);
});

t.test('registry errors surface on the read; the reader stays usable', async (t) => {
  const { reader } = await setup(t);
  const f = fileOf('6-small');
  proxy.setRules([{ method: 'GET', path: BLOB_PATH, action: { kind: 'status', status: 503 } }]);
  await t.rejects(reader.read(f.offset, f.size), { message: new RegExp(`^layer ${layer.digest} span \\d+: .*503`) });
  t.equal(blobGets().length, 2, 'the client retried once');
  proxy.setRules([]);
  t.equal(sha(await reader.read(f.offset, f.size)), f.want);
});

t.test('a corrupted span file in the cache is refetched after a restart', async (t) => {
  const first = await setup(t);
  const f = fileOf('2-small');
  const { start } = spansOfRange(layer.spans, f.offset, f.size);
  await first.reader.read(f.offset, f.size);
  await first.reader.diskWritesDone();
  const layerDir = join(first.cacheDir, layer.digest.slice(7));
  const [file] = await readdir(layerDir);
  t.match(file, new RegExp(`^${start}-[0-9a-f]{64}$`));
  const r = layer.spans.ranges[start];
  const wrong = Buffer.from(layer.tar.subarray(r.uncompressedStart, r.uncompressedEnd));
  wrong[f.offset - r.uncompressedStart] ^= 0x01;
  await writeFile(join(layerDir, file), wrong);

  const second = await setup(t, first.cacheDir);
  t.equal(sha(await second.reader.read(f.offset, f.size)), f.want, 'correct bytes, not the cached ones');
  t.equal(blobGets().length, 1, 'refetched from the registry');
  proxy.clearLog();
  t.equal(sha(await second.reader.read(f.offset, f.size)), f.want);
  t.equal(blobGets().length, 0, 'then served from the cache');
});

t.test('single-flight: 20 concurrent reads of one span make one GET', async (t) => {
  const { reader } = await setup(t);
  proxy.setRules([{ method: 'GET', path: BLOB_PATH, action: { kind: 'delay', ms: 300 } }]);
  const r = layer.spans.ranges[10];
  const out = await Promise.all(Array.from({ length: 20 }, (_, i) => reader.read(r.uncompressedStart + i * 4096, 4096)));
  out.forEach((b, i) => t.equal(sha(b), sha(layer.tar.subarray(r.uncompressedStart + i * 4096, r.uncompressedStart + (i + 1) * 4096))));
  t.equal(blobGets().length, 1);
  t.equal(proxy.bytesServed(), r.compressedEnd - r.compressedStart);
});
