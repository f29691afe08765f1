/**
 * Registry client throughput and latency against a loopback docker-registry:
 * whole-blob GET vs 4 MiB Range GETs (8 in parallel), and p50/p99 of 32 KiB ranges on warm
 * connections. Usage: node dist/bench/registry-bench.js [blobMiB]
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { RegistryClient } from '../fetcher/registry/registry-client.js';
import { parseReference } from '../fetcher/registry/reference.js';
import { sha256Digest } from '../ztoc/digest.js';
import type { Descriptor } from '../ztoc/oci.js';
import { startRegistry } from '../test/helpers/registry.js';

const MiB = 1 << 20;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const s = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - s) / 1e6];
}

async function parallelRanges(client: RegistryClient, ref: ReturnType<typeof parseReference>, d: Descriptor, chunk: number, parallel: number): Promise<number> {
  let next = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const start = next;
      next += chunk;
      if (start >= d.size) return;
      const b = await client.fetchRange(ref, d, start, Math.min(d.size, start + chunk));
      bytes += b.length;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return bytes;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function latencies(size: number, get: (off: number) => Promise<unknown>): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < 300; i++) {
    const off = Math.floor(Math.random() * (size - 32 * 1024));
    const [, ms] = await timed(() => get(off));
    if (i >= 20) lat.push(ms);
  }
  return lat;
}

/** Serves Range GETs of one blob from memory: what a registry with no per-request overhead would do. */
async function rangeServer(data: Buffer): Promise<ReturnType<typeof createServer>> {
  const srv = createServer((req, res) => {
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(416).end();
    const a = Number(m[1]);
    const b = Math.min(Number(m[2]), data.length - 1);
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${data.length}`, 'content-length': b - a + 1 });
    res.end(data.subarray(a, b + 1));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 256);
  const reg = await startRegistry();
  const client = new RegistryClient();
  try {
    const ref = parseReference(`${reg.host}/bench/blob:latest`);
    const data = randomBytes(sizeMiB * MiB);
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: sha256Digest(data), size: data.length };
    const [, pushMs] = await timed(() => client.pushBlob(ref, d, data));
    console.log(`push ${sizeMiB} MiB: ${pushMs.toFixed(0)} ms (${((sizeMiB * 1000) / pushMs).toFixed(0)} MiB/s, chunked PATCH)`);
    await client.fetchRange(ref, d, 0, 1024); // warm-up: connection and page cache
    const rounds = 3;
    const whole: number[] = [];
    const verified: number[] = [];
    const ranges: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const [w, wMs] = await timed(() => client.fetchRange(ref, d, 0, d.size));
      if (w.length !== d.size) throw new Error('short whole read');
      whole.push((sizeMiB * 1000) / wMs);
      const [, vMs] = await timed(() => client.getBlob(ref, d));
      verified.push((sizeMiB * 1000) / vMs);
      const [n, rMs] = await timed(() => parallelRanges(client, ref, d, 4 * MiB, 8));
      if (n !== d.size) throw new Error('short range reads');
      ranges.push((sizeMiB * 1000) / rMs);
    }
    const best = (xs: number[]): number => Math.max(...xs);
    console.log(`whole-blob GET (one request, unverified): ${whole.map((x) => x.toFixed(0)).join(', ')} MiB/s (best ${best(whole).toFixed(0)})`);
    console.log(`whole-blob getBlob (sha256 verified):     ${verified.map((x) => x.toFixed(0)).join(', ')} MiB/s (best ${best(verified).toFixed(0)})`);
    console.log(`4 MiB ranges, 8 parallel:                 ${ranges.map((x) => x.toFixed(0)).join(', ')} MiB/s (best ${best(ranges).toFixed(0)})`);
    console.log(`ratio ranges / whole GET: ${((100 * best(ranges)) / best(whole)).toFixed(0)}%`);

    const report = (name: string, lat: number[]): void =>
      console.log(`32 KiB range latency, ${name} (warm, sequential, n=${lat.length}): p50 ${pct(lat, 50).toFixed(2)} ms, p90 ${pct(lat, 90).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms`);
    report('client -> docker-registry', await latencies(d.size, (off) => client.fetchRange(ref, d, off, off + 32 * 1024)));
    // Baselines that separate the client's cost from the registry's own per-request cost.
    const pool = new Pool(reg.url, { connections: 1 });
    const path = `/v2/bench/blob/blobs/${d.digest}`;
    report('raw undici -> docker-registry', await latencies(d.size, async (off) => {
      const r = await pool.request({ path, method: 'GET', headers: { range: `bytes=${off}-${off + 32 * 1024 - 1}` } });
      await r.body.arrayBuffer();
    }));
    await pool.close();
    const srv = await rangeServer(data);
    const ref2 = parseReference(`127.0.0.1:${(srv.address() as AddressInfo).port}/bench/blob:latest`);
    report('client -> minimal node range server', await latencies(d.size, (off) => client.fetchRange(ref2, d, off, off + 32 * 1024)));
    srv.closeAllConnections();
    srv.close();
  } finally {
    await client.close();
    await reg.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
