/** Values the zTOC format carries (spec soci-format.md §1, §2). Pure data, no I/O. */

export type EntryType = 'reg' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One raw PAX record of a tar entry. Values are bytes: xattrs such as security.capability are binary. */
export interface Xattr {
  key: string;
  value: Uint8Array;
}

export interface FileMetadata {
  /** Entry name exactly as in the tar (may start with `./`, dirs may end in `/`). */
  name: string;
  type: EntryType;
  /** Offset of the entry's data in the uncompressed tar stream. */
  uncompressedOffset: number;
  /** Data size; 0 for non-regular entries. */
  uncompressedSize: number;
  linkname: string;
  /** Permission and mode bits from the header, including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** RFC 3339 with nanoseconds when present (Go time.MarshalText). */
  modTime: string;
  devmajor: number;
  devminor: number;
  /** ALL raw PAX records of the entry, sorted by key. */
  xattrs: Xattr[];
}

export type CompressionAlgorithm = 'gzip' | 'uncompressed';

/** A zran access point (spec §2.1). */
export interface Checkpoint {
  /** Offset of the first full compressed byte of the next deflate block. */
  in: number;
  /** Uncompressed offset. */
  out: number;
  /** Bits (0-7) of the byte at `in - 1` that belong to the next block. */
  bits: number;
  /** Last 32 KiB of uncompressed output before `out` (zero-padded at the front). */
  window: Uint8Array;
}

/** Decoded zInfo (gzip checkpoints, or the fixed spans of an uncompressed layer). */
export interface ZInfo {
  spanSize: number;
  /** For gzip: the checkpoints. For uncompressed layers: empty. */
  checkpoints: Checkpoint[];
}

export interface Ztoc {
  version: string;
  buildToolIdentifier: string;
  compressedArchiveSize: number;
  uncompressedArchiveSize: number;
  toc: FileMetadata[];
  compressionAlgorithm: CompressionAlgorithm;
  /** Number of spans - 1. */
  maxSpanId: number;
  /** `sha256:<hex>` of each span's compressed bytes. */
  spanDigests: string[];
  /** The raw zInfo blob as stored in the zTOC (`checkpoints` field). */
  zinfoBlob: Uint8Array;
}

/** One span's location in both streams (spec §2.3). */
export interface SpanRange {
  id: number;
  compressedStart: number;
  compressedEnd: number;
  uncompressedStart: number;
  uncompressedEnd: number;
}

export const ZTOC_VERSION = '0.9';
export const DEFAULT_SPAN_SIZE = 4 * 1024 * 1024;
export const DEFAULT_MIN_LAYER_SIZE = 10 * 1024 * 1024;
export const WINDOW_SIZE = 32768;
