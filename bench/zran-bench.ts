/**
 * zran checkpointing against `gzip -dc`, and span inflation throughput / event-loop stalls.
 * Usage: node dist/bench/zran-bench.js <layer.tar.gz> [runs=3]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GzipCheckpointer, type CheckpointerResult } from '../ztoc/gzip-checkpointer.js';
import { inflateSpan } from '../ztoc/span-inflate.js';
import { gzipSpanRanges } from '../ztoc/spans.js';

const MiB = 1024 * 1024;
const gz = process.argv[2];
const runs = Number(process.argv[3] ?? 3);

function gzipWall(): number {
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', `gzip -dc '${gz}' > /dev/null`]);
  if (r.status !== 0) throw new Error(`gzip -dc failed: ${r.stderr.toString()}`);
  return (performance.now() - t0) / 1000;
}

function checkpointRun(spanSize: number): { wall: number; cpu: number; res: CheckpointerResult } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const c = new GzipCheckpointer(spanSize, () => undefined);
  const fd = openSync(gz, 'r');
  const buf = Buffer.alloc(MiB);
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) c.push(buf.subarray(0, n));
  closeSync(fd);
  const res = c.end();
  const cpu = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6, res };
}

async function spanBench(res: CheckpointerResult, concurrency: number): Promise<void> {
  const blob = readFileSync(gz);
  const ranges = gzipSpanRanges(res.checkpoints, res.compressedSize, res.uncompressedSize).slice(0, concurrency);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let maxDrift = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxDrift = Math.max(maxDrift, now - last - 1);
    last = now;
  }, 1);
  delay.enable();
  const t0 = performance.now();
  const outs = await Promise.all(
    ranges.map((r) =>
      inflateSpan(res.checkpoints[r.id], blob.subarray(r.compressedStart, r.compressedEnd), r.uncompressedEnd - r.uncompressedStart),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  delay.disable();
  clearInterval(timer);
  const bytes = outs.reduce((a, b) => a + b.length, 0);
  console.log(
    `inflateSpan x${ranges.length} concurrent: ${(bytes / MiB).toFixed(0)} MiB in ${wall.toFixed(2)} s = ` +
      `${(bytes / MiB / wall).toFixed(0)} MiB/s; event loop max delay ${(delay.max / 1e6).toFixed(1)} ms ` +
      `(p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms), setInterval max drift ${maxDrift.toFixed(1)} ms`,
  );
}

async function sequentialSpans(res: CheckpointerResult, count: number): Promise<void> {
  const blob = readFileSync(gz);
  const ranges = gzipSpanRanges(res.checkpoints, res.compressedSize, res.uncompressedSize).slice(0, count);
  const t0 = performance.now();
  let bytes = 0;
  for (const r of ranges) {
    const cp = res.checkpoints[r.id];
    bytes += (await inflateSpan(cp, blob.subarray(r.compressedStart, r.compressedEnd), r.uncompressedEnd - r.uncompressedStart)).length;
  }
  const wall = (performance.now() - t0) / 1000;
  console.log(`inflateSpan sequential x${ranges.length}: ${(bytes / MiB / wall).toFixed(0)} MiB/s`);
}

const size = statSync(gz).size;
let res: CheckpointerResult | undefined;
for (let i = 0; i < runs; i++) {
  const g = gzipWall();
  const ours = checkpointRun(4 * MiB);
  res = ours.res;
  const outMiB = res.uncompressedSize / MiB;
  console.log(
    `run ${i}: ${(size / MiB).toFixed(0)} MiB gz -> ${outMiB.toFixed(0)} MiB; gzip -dc ${g.toFixed(2)} s (${(outMiB / g).toFixed(0)} MiB/s); ` +
      `checkpointer ${ours.wall.toFixed(2)} s wall, ${ours.cpu.toFixed(2)} s cpu (${(outMiB / ours.wall).toFixed(0)} MiB/s), ` +
      `ratio ${(ours.wall / g).toFixed(2)}x, ${res.checkpoints.length} checkpoints`,
  );
}
if (res !== undefined) {
  await sequentialSpans(res, 32);
  await spanBench(res, 16);
  await spanBench(res, 16);
}
