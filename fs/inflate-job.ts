/** The messages between InflateWorkers and its worker threads (fs/inflate-worker.ts). */
import type { ErrorKind } from '../errors/errors.js';
import type { CompressionAlgorithm } from '../ztoc/types.js';

/**
 * One span: its compressed bytes are `compressedLength` bytes of `input` from `inputOffset`
 * (the buffer the span was fetched into, or a copy); the worker writes the uncompressed bytes
 * to the start of `output`. Both are shared memory from SpanBuffers, so nothing span-sized is
 * copied into a message; only the 32 KiB window is.
 */
export interface InflateJob {
  algorithm: CompressionAlgorithm;
  checkpointIn: number;
  checkpointOut: number;
  bits: number;
  uncompressedSize: number;
  lastSpan: boolean;
  digest: string;
  window: Uint8Array;
  input: SharedArrayBuffer;
  inputOffset: number;
  compressedLength: number;
  output: SharedArrayBuffer;
  /** A begun span is inflated while its bytes arrive only once they have been coming this long. */
  streamAfterMs: number;
}

/**
 * `decode`: the input is complete. `begin`: the input is still arriving; `received` says that
 * its first `bytes` are in place, and the job ends when they are all there. `cancel`: forget a
 * begun job (its input will not be completed); it gets no reply and leaves its output alone.
 */
export type InflateRequest =
  | { kind: 'decode' | 'begin'; id: number; job: InflateJob }
  | { kind: 'received'; id: number; bytes: number }
  | { kind: 'cancel'; id: number };

/** `sha256`: hex digest of the uncompressed bytes, for the span cache's file name. */
export type InflateReply = { sha256: string } | { mismatch: string } | { error: { kind: ErrorKind; message: string } };

export interface InflateResponse {
  id: number;
  reply: InflateReply;
}
