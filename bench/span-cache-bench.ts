/**
 * Span read path without FUSE: cold reads (file source -> verify -> inflate -> cache), then warm
 * sequential 1 MiB reads from the memory cache and from the disk cache (fresh process state:
 * first pass verifies every file, later passes only check sizes).
 * Usage: node dist/bench/span-cache-bench.js [layer MiB = 256] [passes = 3]
 */
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileSpanSource } from '../fetcher/span-source.js';
import { FetchLimiter } from '../fs/fetch-limiter.js';
import { SpanCache } from '../fs/span-cache.js';
import { LayerSpanReader } from '../fs/span-reader.js';
import { buildSpanLayer, type SpanLayer } from '../test/helpers/span-layer.js';
import { makeTempDir, removeDir } from '../test/helpers/tmp.js';

const MiB = 1 << 20;
const layerMiB = Number(process.argv[2] ?? 256);
const passes = Number(process.argv[3] ?? 3);

async function readerFor(layer: SpanLayer, cacheDir: string, memoryMaxBytes: number): Promise<LayerSpanReader> {
  const cache = await SpanCache.open({ directory: cacheDir, diskMaxBytes: 64 * 1024 * MiB, memoryMaxBytes });
  return new LayerSpanReader({ layerDigest: layer.digest, spans: layer.spans, source: fileSpanSource(layer.blobPath), cache, limiter: new FetchLimiter(8) });
}

/** Sequential reads of `chunk` bytes over the whole layer, each copied into one buffer as the FUSE layer would. */
async function sequential(reader: LayerSpanReader, chunk: number, check?: string): Promise<{ mibs: number; maxStallMs: number }> {
  const size = reader.uncompressedSize;
  const out = Buffer.allocUnsafe(chunk);
  const hash = check ? createHash('sha256') : undefined;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  for (let off = 0; off < size; off += chunk) {
    const b = await reader.read(off, chunk);
    b.copy(out);
    hash?.update(b);
  }
  const secs = (performance.now() - t0) / 1000;
  h.disable();
  if (check && hash!.digest('hex') !== check) throw new Error('bytes read differ from the tar');
  return { mibs: size / MiB / secs, maxStallMs: h.max / 1e6 };
}

/** Cold reads with 8 readers in parallel over disjoint parts of the layer, as a container start would. */
async function coldParallel(reader: LayerSpanReader, chunk: number, readers: number): Promise<number> {
  const size = reader.uncompressedSize;
  const per = Math.ceil(size / readers / chunk) * chunk;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: readers }, async (_, r) => {
    for (let off = r * per; off < Math.min(size, (r + 1) * per); off += chunk) await reader.read(off, chunk);
  }));
  return size / MiB / ((performance.now() - t0) / 1000);
}

const fmt = (n: number): string => n.toFixed(0).padStart(6);

async function main(): Promise<void> {
  const dir = await makeTempDir('span-bench-');
  try {
    const fileMiB = 16;
    const files = Array.from({ length: Math.ceil(layerMiB / fileMiB) }, (_, i) => ({ name: `f${String(i).padStart(3, '0')}`, size: fileMiB * MiB }));
    const t0 = performance.now();
    const layer = await buildSpanLayer(dir, files, 4 * MiB);
    console.log(`layer: ${(layer.tar.length / MiB).toFixed(0)} MiB tar, ${(layer.blob.length / MiB).toFixed(0)} MiB gzip, ${layer.spans.ranges.length} spans (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const want = createHash('sha256').update(layer.tar.subarray(0, layer.ztoc.uncompressedArchiveSize)).digest('hex');

    const cacheDir = `${dir}/cache`;
    const cold = await readerFor(layer, cacheDir, 2 * layerMiB * MiB);
    const c = await sequential(cold, MiB, want);
    console.log(`cold sequential 1 MiB reads (fetch file, verify, inflate, write cache): ${fmt(c.mibs)} MiB/s, max loop stall ${c.maxStallMs.toFixed(1)} ms`);
    for (let p = 0; p < passes; p++) {
      const w = await sequential(cold, MiB, p === 0 ? want : undefined);
      console.log(`warm memory cache, sequential 1 MiB reads, pass ${p + 1}:               ${fmt(w.mibs)} MiB/s, max loop stall ${w.maxStallMs.toFixed(1)} ms`);
    }
    const w128 = await sequential(cold, 128 * 1024);
    console.log(`warm memory cache, sequential 128 KiB reads (FUSE's request size):     ${fmt(w128.mibs)} MiB/s`);

    const coldDir = `${dir}/cache-par`;
    const par = await readerFor(layer, coldDir, 2 * layerMiB * MiB);
    console.log(`cold, 8 parallel readers of 1 MiB:                                      ${fmt(await coldParallel(par, MiB, 8))} MiB/s`);

    for (const [label, mem] of [['no memory cache', 0], ['64 MiB memory cache', 64 * MiB]] as const) {
      const disk = await readerFor(layer, cacheDir, mem);
      for (let p = 0; p < passes; p++) {
        const r = await sequential(disk, MiB, p === 0 ? want : undefined);
        const note = p === 0 ? 'after restart: verifies each file' : 'verified files: size check only';
        console.log(`warm disk cache, ${label}, pass ${p + 1} (${note}): ${fmt(r.mibs)} MiB/s, max loop stall ${r.maxStallMs.toFixed(1)} ms`);
      }
    }
  } finally {
    await removeDir(dir);
  }
}

await main();
