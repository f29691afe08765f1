/**
 * The mounts a snapshot is used through, as containerd's overlayfs snapshotter returns them:
 * - no parent: a bind of the snapshot's own fs dir (rw for active, ro for a view);
 * - a view with one parent: a read-only bind of the parent's fs dir;
 * - a view with several parents: overlay with lowerdir only (overlayfs is then read-only);
 * - active with parents: overlay with upperdir/workdir in its own dir and the parents as lowerdir,
 *   nearest parent first.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Snapshot } from './snapshot-store.js';
import type { SnapshotDirs } from './snapshot-dirs.js';

export interface Mount {
  type: string;
  source: string;
  options: string[];
}

/**
 * Options containerd puts first on every overlay mount: `index=off` when the kernel has the
 * index feature (it would tie upper dirs to one lower set and refuse a remount with another),
 * `userxattr` when running in a user namespace (trusted.* xattrs are not available there).
 */
export function overlayBaseOptions(): string[] {
  const out: string[] = [];
  if (existsSync('/sys/module/overlay/parameters/index')) out.push('index=off');
  if (inUserNamespace()) out.push('userxattr');
  return out;
}

function inUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

export function mountsFor(snap: Snapshot, dirs: SnapshotDirs, baseOptions: readonly string[]): Mount[] {
  const { kind } = snap.info;
  if (snap.parentIds.length === 0) {
    return [{ type: 'bind', source: dirs.fs(snap.id), options: [kind === 'VIEW' ? 'ro' : 'rw', 'rbind'] }];
  }
  if (kind === 'VIEW' && snap.parentIds.length === 1) {
    return [{ type: 'bind', source: dirs.fs(snap.parentIds[0]), options: ['ro', 'rbind'] }];
  }
  const options = [...baseOptions];
  if (kind === 'ACTIVE') options.push(`workdir=${dirs.work(snap.id)}`, `upperdir=${dirs.fs(snap.id)}`);
  options.push(`lowerdir=${snap.parentIds.map((id) => dirs.fs(id)).join(':')}`);
  return [{ type: 'overlay', source: 'overlay', options }];
}
