/** The messages between InflateWorkers and its worker threads (fs/inflate-worker.ts). */
import type { ErrorKind } from '../errors/errors.js';
import type { CompressionAlgorithm } from '../ztoc/types.js';

/**
 * One span. `input` holds the checkpoint's window, then the compressed bytes; the worker writes
 * the uncompressed bytes to the start of `output`. Both are shared memory from SpanBuffers, so
 * nothing span-sized is copied into a message.
 */
export interface InflateJob {
  algorithm: CompressionAlgorithm;
  checkpointIn: number;
  checkpointOut: number;
  bits: number;
  uncompressedSize: number;
  lastSpan: boolean;
  digest: string;
  input: SharedArrayBuffer;
  windowLength: number;
  compressedLength: number;
  output: SharedArrayBuffer;
}

/** `sha256`: hex digest of the uncompressed bytes, for the span cache's file name. */
export type InflateReply = { sha256: string } | { mismatch: string } | { error: { kind: ErrorKind; message: string } };
