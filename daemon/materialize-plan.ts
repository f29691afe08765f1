/**
 * Flattens a layer's inode tree into the list of file system operations that write it, in
 * an order where every parent exists before its children and every hardlink target before
 * its links. Pure: the paths are built only from validated tree names under `root`.
 */
import type { Inode, InodeKind, InodeTree } from '../fs/inode.js';
import type { UnixTime } from '../ztoc/go-time.js';
import { restoreScript, type XattrTarget } from './xattr-restore.js';

/** One inode to create, as plain data (it crosses to a worker thread). */
export interface PlannedNode {
  path: string;
  kind: InodeKind;
  mode: number;
  uid: number;
  gid: number;
  mtime: UnixTime;
  size: number;
  dataOffset: number;
  linkTarget: string;
  rdev: number;
}

export interface MaterializeJob {
  tarPath: string;
  /** The root first (already there), then parents before children. */
  dirs: PlannedNode[];
  /** Whether the root gets the layer's `./` metadata (false when the tar never lists it). */
  rootMeta: boolean;
  /** The first path of every non-directory inode, in tar-tree order. */
  nodes: PlannedNode[];
  /** Further paths of an inode: hard links to its first path. */
  links: Array<{ path: string; first: string }>;
  /** Input for `setfattr --restore`; '' when nothing has xattrs. */
  xattrScript: string;
  /** The owner and umask new files get, to skip chown/chmod calls that change nothing; null: always call them. */
  creator: Creator | null;
}

export interface Creator {
  uid: number;
  gid: number;
  umask: number;
}

function planned(n: Inode, path: string): PlannedNode {
  return { path, kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime, size: n.size, dataOffset: n.dataOffset, linkTarget: n.linkTarget, rdev: n.rdev };
}

export function planTree(tree: InodeTree, root: string, tarPath: string, creator: Creator | null = null): MaterializeJob {
  const job: MaterializeJob = { tarPath, dirs: [planned(tree.root, root)], rootMeta: !tree.root.implicit, nodes: [], links: [], xattrScript: '', creator };
  const xattrs: XattrTarget[] = [];
  const addXattrs = (n: Inode, path: string): void => {
    if (n.xattrs && n.xattrs.size > 0) xattrs.push({ path, xattrs: n.xattrs });
  };
  addXattrs(tree.root, root);
  const first = new Map<Inode, string>();
  const stack: Array<{ dir: Inode; path: string }> = [{ dir: tree.root, path: root }];
  while (stack.length > 0) {
    const { dir, path } = stack.pop() as { dir: Inode; path: string };
    const subdirs: Array<{ dir: Inode; path: string }> = [];
    for (const [name, child] of dir.children as Map<string, Inode>) {
      const p = `${path}/${name}`;
      if (child.kind === 'dir') {
        subdirs.push({ dir: child, path: p });
        job.dirs.push(planned(child, p));
        addXattrs(child, p);
        continue;
      }
      const seen = first.get(child);
      if (seen !== undefined) {
        job.links.push({ path: p, first: seen });
        continue;
      }
      first.set(child, p);
      job.nodes.push(planned(child, p));
      addXattrs(child, p);
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
  }
  job.xattrScript = xattrs.length > 0 ? restoreScript(xattrs) : '';
  return job;
}
