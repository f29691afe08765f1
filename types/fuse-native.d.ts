/**
 * The parts of fuse-native 2.2.6 (libfuse2 high-level API, path based) that fs/ uses, as
 * patched by third_party/fuse-native/nanosecond-times.patch (stat times with nanoseconds).
 * Errors are negative errno values (Fuse.ENOENT = -2); 0 is success.
 */
declare module 'fuse-native' {
  namespace Fuse {
    /** An exact instant: whole seconds since the epoch (may be negative) plus nanoseconds. */
    interface Timespec {
      sec: number;
      nsec: number;
    }

    /** A stat time: milliseconds since the epoch, a Date, or an exact Timespec. */
    type Time = number | Date | Timespec;

    /** What getattr answers. */
    interface Stat {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      dev?: number;
      nlink: number;
      ino: number;
      rdev: number;
      blksize?: number;
      blocks: number;
      atime: Time;
      mtime: Time;
      ctime: Time;
    }

    interface Statfs {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    type Done = (err: number) => void;

    interface Operations {
      init?(cb: Done): void;
      getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
      fgetattr?(path: string, fd: number, cb: (err: number, stat?: Stat) => void): void;
      readdir?(path: string, cb: (err: number, names?: string[], stats?: Stat[]) => void): void;
      open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
      opendir?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesReadOrErr: number) => void): void;
      release?(path: string, fd: number, cb: Done): void;
      releasedir?(path: string, fd: number, cb: Done): void;
      readlink?(path: string, cb: (err: number, target?: string) => void): void;
      /** A null value answers ENODATA. */
      getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
      listxattr?(path: string, cb: (err: number, names?: string[]) => void): void;
      statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
      access?(path: string, mode: number, cb: Done): void;
    }

    interface Options {
      /** Per-op timeout in ms after which fuse-native answers ETIMEDOUT itself; false turns it off. */
      timeout?: number | false;
      force?: boolean;
      mkdir?: boolean;
      debug?: boolean;
      allowOther?: boolean;
      defaultPermissions?: boolean;
      maxRead?: number;
      fsname?: string;
      subtype?: string;
      kernelCache?: boolean;
      entryTimeout?: number;
      attrTimeout?: number;
    }

    /** Completes an op: the first argument is 0, a negative errno, or a byte count. */
    type Signal = (result: number, ...rest: unknown[]) => void;
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    readonly ops: Fuse.Operations;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** Set by nanosecond-times.patch; undefined in an unpatched fuse-native. */
    static readonly STAT_TIMES_NSEC: true | undefined;
    /** Set by third_party/fuse-native/reused-read-buffer.patch: read's buffer is reused once the handler calls back. */
    static readonly REUSED_READ_BUFFER: true | undefined;
    /** Set by third_party/fuse-native/stat-table.patch: getattr is answered in C from `_statTable` when set before mount. */
    static readonly STAT_TABLE: true | undefined;
    /** stat-table.patch: the 21 uint32 words of one stat, as the addon reads them. */
    static statArray(stat: Fuse.Stat): Uint32Array;
    /** stat-table.patch: the table (see fs/stat-table.ts); the instance keeps it as long as the mount. */
    protected _statTable?: Buffer;
    /** Set by third_party/fuse-native/dir-table.patch: readdir is answered in C from `_dirTable` and `_statTable` when both are set before mount. */
    static readonly DIR_TABLE: true | undefined;
    protected _dirTable?: Buffer;
    /** Set by third_party/fuse-native/span-reads.patch: reads of local spans are answered in C from `_spanTable` when set with `_statTable` before mount. */
    static readonly SPAN_READS: true | undefined;
    protected _spanTable?: Buffer;
    /** Runs `fusermount -uz mnt`. */
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** The `-o...` argument given to fuse_mount/fuse_new. */
    protected _fuseOptions(): string;
    protected _op_getxattr(signal: Fuse.Signal, path: string, name: string, valueBuf: Buffer, position: number): void;
    protected _op_listxattr(signal: Fuse.Signal, path: string, listBuf: Buffer): void;

    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EBADF: number;
    static readonly EACCES: number;
    static readonly EEXIST: number;
    static readonly ENOTDIR: number;
    static readonly EISDIR: number;
    static readonly EINVAL: number;
    static readonly EROFS: number;
    static readonly ERANGE: number;
    static readonly ENOSYS: number;
    static readonly ENODATA: number;
    static readonly EOPNOTSUPP: number;
    static readonly ENOTCONN: number;
    static readonly ETIMEDOUT: number;
  }

  export = Fuse;
}
