/**
 * Fetched compressed bytes of a span -> its uncompressed bytes, once they match the digest the
 * zTOC recorded. Two implementations: on this thread (tests, small tools) and on worker threads
 * (fs/inflate-workers.ts, the mount paths), which keeps zlib's span-sized output buffers off the
 * main V8 heap and can start on a span while its bytes are still arriving.
 */
import { decodeSpan, type SpanCodec } from '../ztoc/layer-spans.js';
import { sha256Hex } from './span-cache.js';

/**
 * The data (with its sha256 in hex when the decoder hashed it already), or the digest the
 * compressed bytes really have when it is not the expected one.
 */
export type DecodedSpan = { data: Buffer; sha256?: string } | { mismatch: string };

/** A decode begun before the span's bytes are all in place. */
export interface ArrivingSpan {
  /** The first `bytes` of the span are in place (a count never goes down; repeats are ignored). */
  received(bytes: number): void;
  /** Settles once every byte was received. */
  readonly result: Promise<DecodedSpan>;
  /** The bytes will not be completed: the result never settles, and nothing is written any more. */
  cancel(): void;
}

export interface SpanDecoder {
  decode(codec: SpanCodec, digest: string, compressed: Uint8Array): Promise<DecodedSpan>;
  /**
   * Starts on a span whose bytes will arrive in `compressed` (shared memory, kept intact until
   * the result settles or the decode is cancelled); undefined when this decoder cannot.
   */
  begin?(codec: SpanCodec, digest: string, compressed: Uint8Array): ArrivingSpan | undefined;
  /** Gets ready for spans soon to come (starts threads), where that takes time. */
  warm?(): void;
}

export const inThreadDecoder: SpanDecoder = {
  async decode(codec, digest, compressed) {
    const got = `sha256:${await sha256Hex(compressed)}`;
    if (got !== digest) return { mismatch: got };
    return { data: await decodeSpan(codec, compressed) };
  },
};
