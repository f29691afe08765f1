/**
 * LayerFs served from memory: stat over 20,000 files (first and second walk), sequential
 * 1 MiB reads with dd at the default and the raised read-ahead, and per-op latencies.
 * Run as root: npx tsc -p tsconfig.json && node dist/bench/fs-layer-bench.js [big-file MiB]
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildInodeTree } from '../fs/inode-tree.js';
import type { Inode } from '../fs/inode.js';
import { LayerFs } from '../fs/layer-fs.js';
import { makeTempDir, removeDir } from '../test/helpers/tmp.js';
import { readTar } from '../ztoc/tar-reader.js';

const run = promisify(execFile);
const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));

/** Runs in a child: the FUSE server is this process's JS thread, which must stay free. */
const PROBE = `
import json, os, sys, time
mnt = sys.argv[1]
def walk_stat():
    n = 0
    t0 = time.perf_counter()
    for d in sorted(os.listdir(os.path.join(mnt, 'many'))):
        dd = os.path.join(mnt, 'many', d)
        for f in os.listdir(dd):
            os.lstat(os.path.join(dd, f)); n += 1
    return n, time.perf_counter() - t0
def lat(fn, items):
    xs = []
    for it in items:
        t0 = time.perf_counter(); fn(it); xs.append((time.perf_counter() - t0) * 1e3)
    xs.sort()
    return {'p50_ms': round(xs[len(xs)//2], 3), 'p99_ms': round(xs[int(len(xs)*0.99)], 3), 'n': len(xs)}
def cat(p):
    with open(p, 'rb') as f: f.read()
n1, s1 = walk_stat()
n2, s2 = walk_stat()
out = {'first_walk_files': n1, 'first_walk_files_per_s': round(n1 / s1), 'second_walk_files_per_s': round(n2 / s2)}
files = [os.path.join(mnt, 'many', 'd%02d' % (i % 20), 'f%05d' % i) for i in range(20000)]
out['stat_cached'] = lat(os.lstat, files[:2000])
out['open_read_close_small'] = lat(cat, files[2000:4000])
t0 = time.perf_counter(); [cat(f) for f in files[4000:8000]]; out['open_read_close_files_per_s'] = round(4000 / (time.perf_counter() - t0))
out['readdir_1000'] = lat(lambda d: os.listdir(d), [os.path.join(mnt, 'many', 'd%02d' % i) for i in range(20)])
out['readlink'] = lat(os.readlink, [os.path.join(mnt, 'sym', 'rel')] * 200)
out['getxattr'] = lat(lambda p: os.getxattr(p, 'user.comment'), [os.path.join(mnt, 'xattr', 'file')] * 200)
out['stat_negative'] = lat(lambda p: os.path.exists(p), [os.path.join(mnt, 'nope%d' % i) for i in range(500)])
print(json.dumps(out))
`;

async function ddMiBs(file: string): Promise<number> {
  await run('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']).catch(() => undefined);
  const t0 = performance.now();
  await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']);
  const s = (performance.now() - t0) / 1000;
  const { stdout } = await run('stat', ['-c', '%s', file]);
  return Number(stdout) / (1 << 20) / s;
}

async function main(): Promise<void> {
  const bigMib = Number(process.argv[2] ?? 512);
  const tmp = await makeTempDir('soci-fs-bench-');
  const mounts: LayerFs[] = [];
  try {
    await run('python3', [fixture('make-layer.py'), tmp, '--big-mib', String(bigMib)], { maxBuffer: 1 << 26 });
    const tar = await readFile(join(tmp, 'layer.tar'));
    const t0 = performance.now();
    const tree = buildInodeTree(readTar(tar).entries);
    console.log(`tree: ${tree.inodes.length} inodes in ${(performance.now() - t0).toFixed(0)} ms (readTar + buildInodeTree)`);
    const read = async (n: Inode, off: number, len: number, dest: Buffer): Promise<number> => tar.copy(dest, 0, n.dataOffset + off, n.dataOffset + off + len);
    for (const readAheadKb of [0, 1024]) {
      const mnt = join(tmp, `mnt-${readAheadKb}`);
      await mkdir(mnt);
      const fs = new LayerFs(tree, read, { mountpoint: mnt, readAheadKb });
      await fs.mount();
      mounts.push(fs);
      const ra = (await run('sh', ['-c', `cat /sys/class/bdi/$(mountpoint -d ${mnt})/read_ahead_kb`])).stdout.trim();
      const dd = await ddMiBs(join(mnt, 'big/random.bin'));
      const ddWarm = await ddMiBs(join(mnt, 'big/random.bin'));
      console.log(`read_ahead_kb=${ra}: dd bs=1M ${bigMib} MiB: ${dd.toFixed(0)} MiB/s and ${ddWarm.toFixed(0)} MiB/s (two runs, page cache dropped before each)`);
      if (readAheadKb > 0) {
        const { stdout } = await run('python3', ['-c', PROBE, mnt], { maxBuffer: 1 << 20 });
        console.log(JSON.stringify(JSON.parse(stdout), null, 1));
      }
    }
  } finally {
    for (const m of mounts) await m.unmount().catch(() => undefined);
    await removeDir(tmp);
  }
}

await main();
