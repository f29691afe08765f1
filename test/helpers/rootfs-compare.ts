import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ContainerdClient } from '../../fetcher/containerd-client.js';
import type { Containerd } from './containerd.js';
import { execOk } from './exec.js';

const WALK = fileURLToPath(new URL('../../../test/fixtures/walk-tree.py', import.meta.url));

export interface WalkEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime_ns: string;
  size?: number;
  target?: string;
  sha256?: string;
  xattrs: Record<string, string>;
}

/**
 * The root filesystem of an image as a snapshotter presents it: a read-only view of the
 * image's top chain ID (under a lease, so containerd's GC leaves it alone), mounted on the host
 * and walked (type, mode, owner, mtime, target, xattrs, sha256 of every file). Fields that
 * depend on the mount itself (inode numbers, link counts) are dropped.
 */
export async function walkImageRootfs(ctd: Containerd, snapshotter: string, topChainId: string, dir: string): Promise<Record<string, WalkEntry>> {
  const key = `walk-${snapshotter}-${Date.now()}`;
  const mnt = join(dir, key);
  await mkdir(mnt, { recursive: true });
  const base = new ContainerdClient({ address: ctd.address, namespace: ctd.namespace });
  const lease = await base.createLease({ ttl: 600_000 });
  const client = base.withLease(lease.id);
  const sn = client.snapshots(snapshotter);
  try {
    const mounts = await sn.view(key, topChainId);
    const m = mounts[0];
    const args = m.type === 'bind' ? ['--bind', '-o', 'ro', m.source, mnt] : ['-t', m.type, m.source, '-o', m.options.join(','), mnt];
    await execOk('mount', args);
    try {
      const out = await execOk('python3', [WALK, mnt], { timeoutMs: 300_000 });
      const tree = JSON.parse(out.stdout) as Record<string, WalkEntry & { ino?: number; nlink?: number }>;
      for (const e of Object.values(tree)) {
        delete e.ino;
        delete e.nlink;
      }
      delete tree['.'];
      return tree;
    } finally {
      await execOk('umount', [mnt]).catch(() => undefined);
    }
  } finally {
    await sn.remove(key).catch(() => undefined);
    await base.deleteLease(lease.id).catch(() => undefined);
    base.close();
  }
}
