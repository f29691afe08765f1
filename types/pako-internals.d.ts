/**
 * The parts of pako's internal zlib port that the zran checkpointer drives directly: the public
 * `pako.Inflate` class hides `data_type` and cannot stop at deflate block boundaries (Z_BLOCK).
 */
declare module 'pako/lib/zlib/zstream.js' {
  export default class ZStream {
    input: Uint8Array | null;
    next_in: number;
    avail_in: number;
    total_in: number;
    output: Uint8Array | null;
    next_out: number;
    avail_out: number;
    total_out: number;
    msg: string;
    /** Opaque inflate state; only pako's own functions look inside. */
    state: unknown;
    /** After inflate(): bits 0-2 unused bits of the last byte, 64 = last block seen, 128 = at a block boundary. */
    data_type: number;
    adler: number;
  }
}

declare module 'pako/lib/zlib/inflate.js' {
  import type ZStream from 'pako/lib/zlib/zstream.js';
  export function inflateInit2(strm: ZStream, windowBits: number): number;
  export function inflateReset2(strm: ZStream, windowBits: number): number;
  export function inflate(strm: ZStream, flush: number): number;
  export function inflateEnd(strm: ZStream): number;
}
