/** The in-memory inodes of a mounted layer. */
import type { UnixTime } from '../ztoc/go-time.js';

export type InodeKind = 'reg' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const PERM_MASK = 0o7777;

export const TYPE_BITS: Record<InodeKind, number> = {
  reg: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  char: S_IFCHR,
  block: S_IFBLK,
  fifo: S_IFIFO,
};

export interface Inode {
  /** Assigned when the tree is finished: 1 is the root, then depth-first in listing order. */
  ino: number;
  kind: InodeKind;
  /** Full st_mode: type bits plus permissions including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Data bytes for regular files, target length for symlinks, 0 otherwise. */
  size: number;
  mtime: UnixTime;
  /** Linux-encoded device number (makedev) for char and block devices. */
  rdev: number;
  /** Paths naming this inode (non-dirs); 2 + subdirectories (dirs). */
  nlink: number;
  linkTarget: string;
  /** Offset of a regular file's data in the uncompressed layer tar. */
  dataOffset: number;
  /** null when the inode has none: most don't, and a Map each costs at 100k inodes. */
  xattrs: Map<string, Buffer> | null;
  /** Directory entries in tar order; null for non-directories. */
  children: Map<string, Inode> | null;
  /** `.`, `..` and the children's names, built once so readdir never copies or sorts. */
  listing: string[];
  /** A parent directory the tar never listed. */
  implicit: boolean;
  /** The tar entry name it came from, for log lines. */
  source: string;
}

export interface InodeTree {
  root: Inode;
  /** FUSE paths (`/`, `/a/b`) to inodes: the high-level FUSE API looks everything up by path. */
  byPath: Map<string, Inode>;
  /** Distinct inodes, indexed by ino - 1. */
  inodes: Inode[];
  /** False when the layer says it has no xattrs (and nothing contradicts it). */
  xattrsEnabled: boolean;
  /** Entries dropped the way `tar -x` drops them, one line each. */
  warnings: string[];
  /** Sum of regular file sizes, counted once per inode. */
  totalSize: number;
}

export function setXattr(n: Inode, name: string, value: Buffer): void {
  (n.xattrs ??= new Map()).set(name, value);
}

/** A directory's child by name: O(1). */
export function lookupChild(dir: Inode, name: string): Inode | undefined {
  return dir.children?.get(name);
}

export function newInode(kind: InodeKind, perm: number, source: string): Inode {
  return {
    ino: 0,
    kind,
    mode: TYPE_BITS[kind] | (perm & PERM_MASK),
    uid: 0,
    gid: 0,
    size: 0,
    mtime: { sec: 0, nsec: 0 },
    rdev: 0,
    nlink: 1,
    linkTarget: '',
    dataOffset: 0,
    xattrs: null,
    children: kind === 'dir' ? new Map() : null,
    listing: [],
    implicit: false,
    source,
  };
}
