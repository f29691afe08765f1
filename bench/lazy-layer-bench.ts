/**
 * Issue 4 performance, same run, loopback docker-registry:
 *  - cold read of a whole layer through `soci mount` vs `curl` of the blob + `gzip -dc` (target >= 60%),
 *    by one `tar` as the first thing on a fresh mount (lookups, readdirs and reads all cold) and,
 *    on a second fresh mount after the stat walk, by 4 parallel readers (as a starting program's
 *    threads and processes read): the first is bound by FUSE round trips, one file at a time
 *  - warm sequential reads of cached spans with 1 MiB reads, page cache dropped (target >= 700 MiB/s)
 *  - stat of every file on the first walk of the second mount (target >= 5,000 files/s over 20,000+ files)
 * Usage: node dist/bench/lazy-layer-bench.js [layer-tar-MiB=1700] [config.toml for the mount]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/registry.js';
import { realLayer, sh } from './real-layer.js';
import { pushImageFromLayout } from './push-layout.js';
import { withHugePageMalloc } from '../daemon/huge-page-malloc.js';

const sizeMiB = Number(process.argv[2] ?? 1700);
const mountConfig = process.argv[3] ? ['--config', process.argv[3]] : [];
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * Commands run asynchronously: the registry is our child and logs every request to a pipe we
 * read; blocking our event loop (spawnSync) would fill that pipe and stall the registry.
 */
function run(cmd: string): Promise<{ code: number; stdout: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.on('exit', (code) => resolve({ code: code ?? 1, stdout: stdout.trim(), ms: performance.now() - t0 }));
  });
}

async function seconds(cmd: string): Promise<number> {
  const r = await run(cmd);
  if (r.code !== 0) throw new Error(`${cmd} failed`);
  return r.ms / 1000;
}

async function out(cmd: string): Promise<string> {
  return (await run(cmd)).stdout;
}

/** dd's own summary line ("N bytes (...) copied, S s, ..."): bytes and seconds, without process start-up. */
function parseDd(line: string): [number, number] {
  const m = /^(\d+) bytes .* copied, ([\d.]+) s/.exec(line);
  if (!m) throw new Error(`unexpected dd output: ${line}`);
  return [Number(m[1]), Number(m[2])];
}

/** Seconds to stat every file under mnt (the first walk of a fresh mount loads its metadata). */
function statWalk(mnt: string): Promise<number> {
  return seconds(`find ${mnt} -type f -print0 | xargs -0 stat --format=%s > /dev/null`);
}

interface Mounted {
  mnt: string;
  /** Unmounts (SIGTERM to `soci mount`); safe to call twice. */
  stop(): Promise<void>;
}

/** `soci mount` of the layer with its own root (span cache) under dir; resolves once mounted. */
async function mountLayer(ref: string, layerDigest: string, dir: string): Promise<Mounted> {
  const mnt = join(dir, 'mnt');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(mnt, { recursive: true });
  // With the daemon's malloc settings: `soci mount` serves a layer as the daemon does.
  const child = spawn(process.execPath, [cli, ...mountConfig, '--root', dir, 'mount', ref, layerDigest, mnt], { stdio: ['ignore', 'pipe', 'inherit'], env: withHugePageMalloc(process.env) });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('mounted layer') && resolve());
    child.on('exit', (c) => reject(new Error(`soci mount exited ${c}`)));
  });
  return {
    mnt,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const { work, gz, layout } = realLayer(sizeMiB);
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/bench/layer:1`;
    const run = join(work, 'lazy-run');
    rmSync(run, { recursive: true, force: true });
    const manifest = await pushImageFromLayout(reg.url, 'bench/layer', '1', layout);
    sh(`node ${cli} --root ${run}/builder2 --address /nonexistent create ${ref} > /dev/null && node ${cli} --root ${run}/builder2 push ${ref} > /dev/null`);
    const layerDigest = manifest.layers[0].digest as string;
    const blobUrl = `${reg.url}/v2/bench/layer/blobs/${layerDigest}`;

    const curl = await seconds(`curl -sf -o /dev/null ${blobUrl}`);
    const gunzip = await seconds(`gzip -dc ${gz} > /dev/null`);
    const baseline = curl + gunzip;

    const mount = (name: string): Promise<Mounted> => mountLayer(ref, layerDigest, join(run, name));
    const first = await mount('node');
    const mnt = first.mnt;
    try {
      // First thing on a fresh mount: every lookup, readdir and read is cold.
      const cold = await seconds(`tar -C ${mnt} -cf - . | cat > /dev/null`);
      const files = Number(await out(`find ${mnt} -type f | wc -l`));
      const tarBytes = Number(await out(`find ${mnt} -type f -printf '%s\\n' | awk '{s+=$1} END {print s}'`));
      // The biggest files, up to 512 MiB: enough bytes that the time is the reads, not process start-up.
      const bigFiles = (await out(`find ${mnt} -type f -size +8M -printf '%s %p\\n' | sort -rn | awk '{s+=$1; print; if (s > 536870912) exit}'`))
        .split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(' ') + 1));
      const ddAll = async (): Promise<{ mib: number; rate: number }> => {
        let bytes = 0;
        let secs = 0;
        for (const f of bigFiles) {
          const [b, t] = parseDd(await out(`dd if='${f}' of=/dev/null bs=1M 2>&1 | tail -1`));
          bytes += b;
          secs += t;
        }
        return { mib: bytes / 2 ** 20, rate: bytes / 2 ** 20 / secs };
      };
      const dropCaches = 'sync; echo 3 > /proc/sys/vm/drop_caches';
      // (a) Only the span cache is warm: the mount's and the cache files' pages are dropped, so
      //     spans not in the memory LRU come from the disk.
      await seconds(dropCaches);
      const fromDisk = await ddAll();
      // (b) The span cache files are in the page cache (a machine that has been running), the
      //     mount's own pages are not: every read still goes through FUSE and the span reader.
      await seconds(`${dropCaches}; find ${join(run, 'node', 'cache')} -type f -exec cat {} + > /dev/null`);
      const fromPageCache = await ddAll();
      // The disk's own speed for the same amount, as a reference for (a).
      await seconds(dropCaches);
      const [diskBytes, diskSecs] = parseDd(await out(`dd if=${gz} of=/dev/null bs=1M count=${Math.round(fromDisk.mib)} 2>&1 | tail -1`));
      console.log(`layer: ${(Number(await out(`stat --format=%s ${gz}`)) / 2 ** 20).toFixed(0)} MiB gzip, ${(tarBytes / 2 ** 20).toFixed(0)} MiB of file data, ${files} files`);
      console.log(`baseline: curl ${curl.toFixed(2)} s + gzip -dc ${gunzip.toFixed(2)} s = ${baseline.toFixed(2)} s`);
      console.log(`cold read of every file through soci mount (tar, fresh mount): ${cold.toFixed(2)} s -> ${((baseline / cold) * 100).toFixed(0)}% of the baseline's speed (target >= 60%)`);
      console.log(`warm sequential read, dd bs=1M of the ${bigFiles.length} biggest files (${fromDisk.mib.toFixed(0)} MiB), target >= 700 MiB/s:`);
      console.log(`  span cache files in the page cache, mount's pages dropped: ${fromPageCache.rate.toFixed(0)} MiB/s`);
      console.log(`  all pages dropped (spans beyond the memory cache come from disk): ${fromDisk.rate.toFixed(0)} MiB/s; the disk itself reads ${(diskBytes / 2 ** 20 / diskSecs).toFixed(0)} MiB/s (dd bs=1M)`);
      // A second mount with an empty span cache: the same cold read by 4 readers at once.
      await first.stop();
      await seconds(dropCaches);
      const second = await mount('node-parallel');
      try {
        const statFirst = await statWalk(second.mnt);
        console.log(`stat of ${files} files, first walk (fresh mount): ${(files / statFirst).toFixed(0)} files/s (target >= 5000)`);
        const parallel = await seconds(`find ${second.mnt} -type f -print0 | xargs -0 -P4 -n 500 cat > /dev/null`);
        console.log(`cold read of every file by 4 parallel readers (xargs -P4 cat, after the stat walk): ${parallel.toFixed(2)} s -> ${((baseline / parallel) * 100).toFixed(0)}% of the baseline's speed`);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  } finally {
    await reg.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
