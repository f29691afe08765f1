import type { Descriptor } from '../ztoc/oci.js';

/**
 * Where `soci create` / `soci convert` read an image from: containerd's content store, an
 * OCI image layout (directory or tar), or a registry. Blobs read through a source are
 * verified against their descriptor's digest.
 */
export interface ImageSource {
  /** Human-readable origin, for messages ("containerd default@/run/containerd/containerd.sock"). */
  readonly origin: string;
  /** The top-level descriptor (image index or manifest) of a reference. */
  resolve(ref: string): Promise<Descriptor>;
  /** A small blob (manifest, config, index), verified. */
  readBlob(desc: Descriptor): Promise<Buffer>;
  /** A large blob as a stream of chunks; the caller verifies the digest while it reads. */
  streamBlob(desc: Descriptor): AsyncIterable<Uint8Array>;
  /** `length` bytes of a blob from `offset` (not verified: callers check what they read, e.g. span digests). */
  readRange(desc: Descriptor, offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Where `soci convert` writes the converted image. */
export interface ImageSink {
  /** Stores a blob (idempotent). `labels` are containerd GC labels where the sink is containerd. */
  writeBlob(desc: Descriptor, bytes: Uint8Array, labels?: Record<string, string>): Promise<void>;
  /** Copies a blob that exists in the source into the sink, if the sink does not have it yet. */
  copyBlob(desc: Descriptor, from: ImageSource): Promise<void>;
  /** Points name at desc (image record in containerd, ref annotation in an OCI layout). */
  tagImage(name: string, desc: Descriptor): Promise<void>;
  close(): Promise<void>;
}
