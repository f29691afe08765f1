/**
 * What a workload really reads from an image, measured through the page cache: drop it, run
 * the workload once on overlayfs, then ask `fincore` which pages of the unpacked layer files
 * are resident. That counts every byte the kernel had to read for the workload, read(2) and
 * mmap page faults alike, readahead and fault-around included, and nothing it never touched.
 */
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from '../test/helpers/exec.js';

export interface PageCacheReads {
  /** Bytes of the files' pages in the page cache. */
  residentBytes: number;
  /** Files with at least one resident page. */
  filesTouched: number;
  /** Sum of the sizes of those files (an upper bound on what was read). */
  touchedFileBytes: number;
  files: number;
  fileBytes: number;
}

/** Global, but harmless: it only costs others a re-read. */
export async function dropPageCache(): Promise<void> {
  await execOk('sync', []);
  await writeFile('/proc/sys/vm/drop_caches', '3');
}

/** fincore over every regular file under the dirs; lines are "RES SIZE FILE" in bytes. */
export async function pageCacheResidency(dirs: string[]): Promise<PageCacheReads> {
  const script = 'find "$@" -type f -print0 | xargs -0 -r fincore --bytes --raw --noheadings --output RES,SIZE';
  const res = await execOk('bash', ['-c', script, 'fincore-all', ...dirs]);
  const out: PageCacheReads = { residentBytes: 0, filesTouched: 0, touchedFileBytes: 0, files: 0, fileBytes: 0 };
  for (const line of res.stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)/.exec(line);
    if (!m) continue;
    const resident = Number(m[1]);
    const size = Number(m[2]);
    out.files += 1;
    out.fileBytes += size;
    out.residentBytes += resident;
    if (resident > 0) {
      out.filesTouched += 1;
      out.touchedFileBytes += size;
    }
  }
  return out;
}

/** queue/read_ahead_kb of the block device holding path (a partition's is its disk's). */
export async function readaheadFileFor(path: string): Promise<string> {
  const dev = (await stat(path)).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const sys = `/sys/dev/block/${major}:${minor}`;
  for (const dir of [sys, join(sys, '..')]) if (existsSync(join(dir, 'queue', 'read_ahead_kb'))) return join(dir, 'queue', 'read_ahead_kb');
  throw new Error(`${path}: no block device queue for ${major}:${minor}`);
}

/**
 * Sets the device's readahead to `kb`; returns the function that restores it. With 0 the
 * kernel reads only the pages a read or a page fault asks for, so residency is the workload's
 * own working set. The setting is the whole disk's: restore it soon.
 */
export async function setReadahead(file: string, kb: number): Promise<() => Promise<void>> {
  const old = (await readFile(file, 'utf8')).trim();
  await writeFile(file, String(kb));
  return () => writeFile(file, old);
}
