/**
 * Throughput of TarReader.push over a real tar of /usr held in memory, fed in 1 MiB
 * chunks, next to zlib's gunzip of the same bytes for scale.
 * Run: npx tsc -p tsconfig.json && node dist/bench/tar-reader-bench.js [MiB] [dirs under / ...]
 */
import { spawn } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { TarReader } from '../ztoc/tar-reader.js';

const MIB = 1 << 20;

async function captureTar(limit: number, dirs: string[]): Promise<Buffer> {
  const child = spawn('tar', ['-cf', '-', '-C', '/', ...dirs], { stdio: ['ignore', 'pipe', 'ignore'] });
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    parts.push(chunk);
    total += chunk.length;
    if (total >= limit) break;
  }
  child.kill();
  return Buffer.concat(parts).subarray(0, limit);
}

/** CPU time, not wall time: the machine may be shared, and only our own work matters here. */
function parseOnce(tar: Buffer): { ms: number; entries: number } {
  const start = process.cpuUsage();
  const r = new TarReader();
  // The capture is cut mid-entry, so end() is not called: this measures push() alone.
  for (let i = 0; i < tar.length; i += MIB) r.push(tar.subarray(i, i + MIB));
  const used = process.cpuUsage(start);
  return { ms: (used.user + used.system) / 1000, entries: r.entries.length };
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 200);
  const dirs = process.argv.length > 3 ? process.argv.slice(3) : ['usr/lib', 'usr/share'];
  const tar = await captureTar(mib * MIB, dirs);
  const runs = Array.from({ length: 5 }, () => parseOnce(tar));
  console.log(`runs (ms): ${runs.map((r) => r.ms.toFixed(1)).join(" ")}`);
  const best = Math.min(...runs.map((r) => r.ms));
  const rate = tar.length / MIB / (best / 1000);
  console.log(`tar: ${(tar.length / MIB).toFixed(0)} MiB, ${runs[0].entries} entries`);
  console.log(`TarReader.push CPU time: best ${best.toFixed(1)} ms = ${rate.toFixed(0)} MiB/s`);
  const gz = gzipSync(tar, { level: 6 });
  const g0 = process.cpuUsage();
  gunzipSync(gz);
  const gu = process.cpuUsage(g0);
  const gms = (gu.user + gu.system) / 1000;
  console.log(`gunzip CPU time for the same tar: ${gms.toFixed(0)} ms = ${(tar.length / MIB / (gms / 1000)).toFixed(0)} MiB/s`);
}

await main();
