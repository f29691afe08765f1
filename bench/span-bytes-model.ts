/**
 * How many bytes a lazy start of the bench image must move, by span size and readahead, from
 * the pages the workload (`import torch` by default) touches. When the link is the bound, these
 * bytes at the link's rate are the least time to the workload's output, so this says which span
 * sizes could reach a target before any run.
 *
 *  1. Pages touched: the image's trees are stacked read-only with overlayfs (extras over the
 *     rootfs, as the layers stack), the disk's readahead is set to 0, the page cache dropped,
 *     the workload run once in a chroot, and mincore(2) lists the resident pages of every file.
 *  2. For every span size a zTOC is built for each layer (the same code as `soci create`).
 *  3. A read of a touched page is widened to the kernel's read-around for a given readahead
 *     (a window of that size centred on the page, inside the file); every span it overlaps is
 *     fetched whole. Bytes = zTOCs (fetched whole: their digest vouches for the span digests and
 *     windows) + compressed bytes of those spans.
 * The model leaves out what changes nothing in bytes: timing, coalesced GETs, HTTP headers.
 * Checked against the throttled bench's span bytes (readahead 1024 KiB, 2026-12-07): 4 MiB spans
 * model 222 MiB, measured 223 MiB; 2 MiB 191, measured 190-191; 1 MiB 169, measured 168-180.
 *
 * Usage (root): node dist/bench/span-bytes-model.js [--span-sizes 512KiB,1MiB,2MiB,4MiB]
 *   [--readahead-kb 0,32,128,1024] [--workload torch|numpy]
 * SOCI_BENCH_CACHE (default /var/cache/soci-bench) keeps the rootfs and the image layout.
 */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildZtoc, type BuiltZtoc } from '../ztoc/build.js';
import { layerSpans, type LayerSpans } from '../ztoc/layer-spans.js';
import { spanIdForOffset } from '../ztoc/spans.js';
import { cleanPath } from '../ztoc/ztoc-info.js';
import { parsePositiveBytes } from '../cli/parse.js';
import { execOk } from '../test/helpers/exec.js';
import { makeTempDir, removeDir } from '../test/helpers/tmp.js';
import { benchTrees, benchWorkload, ensureDebianTorchImage, type BenchImage, type BenchWorkload } from './debian-torch-image.js';
import { dropPageCache, readaheadFileFor, setReadahead } from './page-cache-reads.js';

const CACHE = process.env.SOCI_BENCH_CACHE ?? '/var/cache/soci-bench';
const MiB = 2 ** 20;
const PAGE = 4096;
/** Every span has one window of this size in the zTOC's zInfo. */
const WINDOW = 32 * 1024;

/** Resident pages of each file, as runs [firstPage, lastPage]. Python's ctypes, since Node has no mincore. */
const MINCORE_PY = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
for path in sys.stdin.buffer.read().split(b'\\0'):
    if not path: continue
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        continue
    size = os.fstat(fd).st_size
    if size > 0:
        addr = libc.mmap(None, size, 1, 1, fd, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            n = (size + 4095) // 4096
            vec = (ctypes.c_ubyte * n)()
            if libc.mincore(ctypes.c_void_p(addr), size, vec) == 0:
                runs = []; start = None
                for i in range(n + 1):
                    on = i < n and vec[i] & 1
                    if on and start is None: start = i
                    if not on and start is not None: runs.append('%d-%d' % (start, i - 1)); start = None
                if runs: sys.stdout.write(path.decode('utf-8', 'surrogateescape') + '\\t' + ','.join(runs) + '\\n')
            libc.munmap(ctypes.c_void_p(addr), size)
    os.close(fd)
`;

interface TouchedFile {
  /** Index of the topmost layer holding the path (the one overlayfs serves). */
  layer: number;
  /** Offset of the file's data in that layer's uncompressed tar. */
  offset: number;
  size: number;
  /** Resident page runs, inclusive. */
  runs: Array<[number, number]>;
}

function say(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

async function buildZtocs(image: BenchImage, spanSize: number): Promise<BuiltZtoc[]> {
  const built: BuiltZtoc[] = [];
  for (const layer of image.layers) {
    const blob = join(image.layout, 'blobs', 'sha256', layer.digest.slice('sha256:'.length));
    built.push(await buildZtoc(createReadStream(blob, { highWaterMark: 1 << 20 }), { spanSize, algorithm: 'gzip', buildTool: 'span-bytes-model' }));
  }
  return built;
}

/** Runs the workload once on the stacked trees, with no readahead, and lists what it left in the page cache. */
async function touchedPages(work: string, workload: BenchWorkload): Promise<Map<string, Array<[number, number]>>> {
  const { rootfs, extras } = benchTrees(CACHE);
  const merged = join(work, 'merged');
  await mkdir(merged, { recursive: true });
  await execOk('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${extras}:${rootfs}`, merged]);
  const restoreReadahead = await setReadahead(await readaheadFileFor(rootfs), 0);
  try {
    await execOk('mount', ['-t', 'proc', 'proc', join(merged, 'proc')]);
    try {
      await dropPageCache();
      const out = await execOk('chroot', [merged, ...workload.argv], { env: { ...process.env, LC_ALL: 'C' } });
      say(`   workload: ${out.stdout.trim()}`);
    } finally {
      await execOk('umount', [join(merged, 'proc')]);
    }
    const list = await execOk('bash', ['-c', 'cd "$1" && find . -xdev -type f -print0 | python3 -c "$2"', 'mincore', merged, MINCORE_PY]);
    const pages = new Map<string, Array<[number, number]>>();
    for (const line of list.stdout.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab < 0) continue;
      const runs = line.slice(tab + 1).split(',').map((r) => r.split('-').map(Number) as [number, number]);
      pages.set(cleanPath(line.slice(0, tab)), runs);
    }
    return pages;
  } finally {
    await restoreReadahead();
    await execOk('umount', [merged]);
  }
}

/** Where each touched file lives: the topmost layer whose TOC has it as a regular file. */
function placeFiles(pages: Map<string, Array<[number, number]>>, ztocs: BuiltZtoc[]): TouchedFile[] {
  const where = new Map<string, Omit<TouchedFile, 'runs'>>();
  ztocs.forEach((z, layer) => {
    for (const e of z.ztoc.toc) {
      const name = cleanPath(e.name);
      if (e.type === 'reg') where.set(name, { layer, offset: e.uncompressedOffset, size: e.uncompressedSize });
      else where.delete(name);
    }
  });
  const files: TouchedFile[] = [];
  for (const [name, runs] of pages) {
    const w = where.get(name);
    if (w) files.push({ ...w, runs });
  }
  return files;
}

/** Uncompressed layer ranges the kernel asks for: each touched page widened to its read-around window. */
function readRanges(files: TouchedFile[], readaheadBytes: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (const f of files) {
    for (const [a, b] of f.runs) {
      for (let p = a; p <= b; p++) {
        let start = p * PAGE;
        let end = Math.min(f.size, start + PAGE);
        if (readaheadBytes > PAGE) {
          start = Math.max(0, Math.min(start - readaheadBytes / 2, f.size - readaheadBytes));
          end = Math.min(f.size, start + readaheadBytes);
        }
        out.push([f.layer, f.offset + start, f.offset + end]);
      }
    }
  }
  return out;
}

function spanBytes(spans: LayerSpans[], ranges: Array<[number, number, number]>): { bytes: number; count: number } {
  const hit = spans.map(() => new Set<number>());
  for (const [layer, start, end] of ranges) {
    const r = spans[layer].ranges;
    for (let id = spanIdForOffset(r, start); id <= spanIdForOffset(r, end - 1); id++) hit[layer].add(id);
  }
  let bytes = 0;
  let count = 0;
  hit.forEach((ids, layer) => {
    for (const id of ids) bytes += spans[layer].ranges[id].compressedEnd - spans[layer].ranges[id].compressedStart;
    count += ids.size;
  });
  return { bytes, count };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'span-sizes': { type: 'string', default: '512KiB,1MiB,2MiB,4MiB' }, 'readahead-kb': { type: 'string', default: '0,32,128,1024' }, workload: { type: 'string', default: 'torch' } } });
  const workload = benchWorkload(values.workload);
  const spanSizes = values['span-sizes'].split(',').map((s) => parsePositiveBytes(s));
  const readaheads = values['readahead-kb'].split(',').map(Number);
  say('== image (cache ' + CACHE + ')');
  const image = await ensureDebianTorchImage(CACHE, say);
  say(`   ${(image.compressedBytes / MiB).toFixed(1)} MiB compressed in ${image.layers.length} layers`);
  const work = await makeTempDir('soci-span-model-');
  try {
    say('== pages the workload touches (readahead 0, dropped page cache)');
    const pages = await touchedPages(work, workload);
    let place: TouchedFile[] | undefined;
    for (const spanSize of spanSizes) {
      const ztocs = await buildZtocs(image, spanSize);
      if (place === undefined) {
        place = placeFiles(pages, ztocs);
        const touched = place.reduce((n, f) => n + f.runs.reduce((m, [a, b]) => m + b - a + 1, 0), 0) * PAGE;
        say(`   ${place.length} files, ${(touched / MiB).toFixed(1)} MiB of pages (of ${pages.size} resident files in the trees)`);
        say('== bytes before the output, by span size and readahead (zTOCs + spans = total; image bytes / total)');
      }
      const spans = ztocs.map((z) => layerSpans(z.ztoc));
      const ztocBytes = ztocs.reduce((n, z) => n + z.bytes.length, 0);
      const windows = spans.reduce((n, s) => n + s.ranges.length, 0) * WINDOW;
      for (const kb of readaheads) {
        const s = spanBytes(spans, readRanges(place, kb * 1024));
        const total = ztocBytes + s.bytes;
        say(`   spans ${spanSize / 1024} KiB, readahead ${kb} KiB: zTOCs ${(ztocBytes / MiB).toFixed(1)} MiB (windows ${(windows / MiB).toFixed(1)}) + ${s.count} spans ${(s.bytes / MiB).toFixed(1)} MiB = ${(total / MiB).toFixed(1)} MiB; ${(image.compressedBytes / total).toFixed(2)}x`);
      }
    }
  } finally {
    await removeDir(work);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`span-bytes-model: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
