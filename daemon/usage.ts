/**
 * Disk usage of a directory tree as containerd's overlayfs snapshotter counts it: allocated
 * blocks (st_blocks * 512) and the number of distinct inodes (hard links once, the root included).
 * Walks with async fs calls so a large upper dir does not block the event loop.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './snapshot-store.js';

export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    size += Number(st.blocks) * 512;
    if (!st.isDirectory()) return;
    for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(root);
  return { size, inodes: seen.size };
}
