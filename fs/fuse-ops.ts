/**
 * The FUSE operations over an inode tree. Metadata answers come straight from memory in the
 * same tick; only `read` waits, on the injected reader, so a slow fetch never delays a stat.
 * open/opendir/release/releasedir are left out on purpose: libfuse then answers them in its
 * own thread without a round trip to JS (the mount is read-only, the kernel checks modes).
 */
import Fuse from 'fuse-native';
import { describe } from '../errors/errors.js';
import type { FsLogger } from './fs-logger.js';
import type { Inode, InodeTree } from './inode.js';
import { normalizeTime } from '../ztoc/go-time.js';
import { buildDirTable, buildStatTable } from './stat-table.js';

/** Counts of FUSE operations served and answered with an error (a negative errno). */
export interface FuseOpMetrics {
  op(name: string, count?: number): void;
  error(name: string, errno: number, count?: number): void;
  /**
   * Runs `flush` before the counts are read (ops the addon answered without JS are added then);
   * the returned function stops that.
   */
  beforeRead?(flush: () => void): () => void;
}

/**
 * Copies bytes [offset, offset + length) of a regular file into `dest` (FUSE's reply buffer,
 * at least `length` long) and resolves to the bytes copied; length never reaches past the end.
 */
export type ReadData = (node: Inode, offset: number, length: number, dest: Buffer) => Promise<number>;

const BLOCK = 4096;
const W_OK = 2;

/**
 * A layer records only mtimes; atime and ctime repeat it. fuse-native, as patched, passes the
 * exact seconds and nanoseconds on, so stat through the mount equals `tar -x` to the nanosecond.
 */
function toStat(n: Inode): Fuse.Stat {
  const time: Fuse.Timespec = normalizeTime(n.mtime);
  return {
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    size: n.size,
    nlink: n.nlink,
    ino: n.ino,
    rdev: n.rdev,
    blksize: BLOCK,
    blocks: Math.ceil(n.size / 512),
    atime: time,
    mtime: time,
    ctime: time,
  };
}

/**
 * Every op, counted: the callback is the last argument, and its first argument is the result
 * (0 or a byte count on success, a negative errno on failure).
 */
export function countedOps(ops: Fuse.Operations, metrics: FuseOpMetrics): Fuse.Operations {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
    out[name] = (...args: unknown[]): void => {
      metrics.op(name);
      const cb = args[args.length - 1] as (res: number, ...rest: unknown[]) => void;
      args[args.length - 1] = (res: number, ...rest: unknown[]): void => {
        if (res < 0) metrics.error(name, res);
        cb(res, ...rest);
      };
      fn(...args);
    };
  }
  return out as Fuse.Operations;
}

/** The tree's stats and listings for the addon to answer getattr and readdir with (fs/stat-table.ts), and each entry's data offset. */
export interface LayerTables {
  stat: Buffer;
  dir: Buffer;
  dataOffsets: number[];
}

export function layerTablesOf(tree: InodeTree): LayerTables {
  const entries = [...tree.byPath];
  const stat = buildStatTable(entries.map(([path, n]) => [path, Fuse.statArray(toStat(n))] as const));
  const dir = buildDirTable(entries.map(([path, n]) => [path, n.children ? [...n.children.keys()] : undefined] as const));
  return { stat, dir, dataOffsets: entries.map(([, n]) => (n.kind === 'reg' ? n.dataOffset : 0)) };
}

export function fuseOps(tree: InodeTree, readData: ReadData, log: FsLogger, label: string): Fuse.Operations {
  const stats = tree.inodes.map(toStat);
  const byPath = tree.byPath;
  const getattr = (path: string, cb: (err: number, stat?: Fuse.Stat) => void): void => {
    const n = byPath.get(path);
    if (n) cb(0, stats[n.ino - 1]);
    else cb(Fuse.ENOENT);
  };
  const statfs: Fuse.Statfs = {
    bsize: BLOCK,
    frsize: BLOCK,
    blocks: Math.ceil(tree.totalSize / BLOCK),
    bfree: 0,
    bavail: 0,
    files: tree.inodes.length,
    ffree: 0,
    favail: 0,
    fsid: 0,
    flag: 1, // ST_RDONLY
    namemax: 255,
  };
  return {
    getattr,
    fgetattr: (path, _fd, cb) => getattr(path, cb),
    readdir(path, cb) {
      const n = byPath.get(path);
      if (!n) return cb(Fuse.ENOENT);
      if (n.kind !== 'dir') return cb(Fuse.ENOTDIR);
      cb(0, n.listing);
    },
    readlink(path, cb) {
      const n = byPath.get(path);
      if (!n) return cb(Fuse.ENOENT);
      if (n.kind !== 'symlink') return cb(Fuse.EINVAL);
      cb(0, n.linkTarget);
    },
    access(path, mode, cb) {
      if (!byPath.has(path)) return cb(Fuse.ENOENT);
      cb(mode & W_OK ? Fuse.EROFS : 0);
    },
    statfs: (_path, cb) => cb(0, statfs),
    getxattr(path, name, _position, cb) {
      // ENOSYS makes the kernel stop asking this mount (EOPNOTSUPP from then on, which overlayfs
      // reads as "not set"): otherwise every overlay lookup costs a round trip per lower layer.
      if (!tree.xattrsEnabled) return cb(Fuse.ENOSYS);
      const n = byPath.get(path);
      if (!n) return cb(Fuse.ENOENT);
      cb(0, n.xattrs?.get(name) ?? null);
    },
    listxattr(path, cb) {
      if (!tree.xattrsEnabled) return cb(0, []);
      const n = byPath.get(path);
      if (!n) return cb(Fuse.ENOENT);
      cb(0, n.xattrs ? [...n.xattrs.keys()] : []);
    },
    read(path, _fd, buf, len, pos, cb) {
      const n = byPath.get(path);
      if (!n) return cb(Fuse.ENOENT);
      if (n.kind !== 'reg') return cb(Fuse.EISDIR);
      const end = Math.min(pos + len, n.size);
      if (pos >= end) return cb(0);
      const want = end - pos;
      readData(n, pos, want, buf).then(
        (got) => {
          if (got !== want) {
            log.error({ layer: label, path, offset: pos, want, got }, 'short read from layer data');
            return cb(Fuse.EIO);
          }
          cb(want);
        },
        (err: unknown) => {
          log.error({ layer: label, path, offset: pos, length: want, err: describe(err) }, 'read failed');
          cb(Fuse.EIO);
        },
      );
    },
  };
}
