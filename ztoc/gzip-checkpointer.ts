import { crc32 } from 'node:zlib';
import ZStream from 'pako/lib/zlib/zstream.js';
import { inflate, inflateInit2, inflateReset2 } from 'pako/lib/zlib/inflate.js';
import { SociError, internal, invalidArgument } from '../errors/errors.js';
import { SpanHasher } from './span-hasher.js';
import { WINDOW_SIZE, type Checkpoint } from './types.js';

export { PlainSpanner } from './plain-spanner.js';

export interface CheckpointerResult {
  checkpoints: Checkpoint[];
  /** `sha256:<hex>` of each span's compressed bytes (spec §2.3). */
  spanDigests: string[];
  compressedSize: number;
  uncompressedSize: number;
}

const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;
const Z_BLOCK = 5;
/** 32 + 15: accept a gzip (or zlib) header, 32 KiB window (spec §2.1). */
const AUTO_HEADER_WINDOW_BITS = 47;
const DT_BLOCK_BOUNDARY = 128;
const DT_LAST_BLOCK = 64;
const OUT_AREA = 1 << 20;
const GZIP_TRAILER = 8;

/** The last n bytes of prev followed by next. */
function lastBytes(prev: Uint8Array, next: Uint8Array, n: number): Uint8Array {
  if (next.length >= n) return next.slice(next.length - n);
  const both = new Uint8Array(prev.length + next.length);
  both.set(prev, 0);
  both.set(next, prev.length);
  return both.slice(Math.max(0, both.length - n));
}
/** Below this much free space the output area is emitted and slid; inflate's fast path wants room. */
const MIN_FREE = 64 * 1024;

/**
 * zran checkpoints (spec §2.1) and span digests (§2.3) of a gzip stream in one streaming pass.
 * The output area keeps WINDOW_SIZE bytes of history in front of fresh output, so a checkpoint's
 * window is one contiguous copy and the zero padding of early windows comes for free.
 */
export class GzipCheckpointer {
  private readonly strm = new ZStream();
  private readonly out = new Uint8Array(WINDOW_SIZE + OUT_AREA);
  /** End of produced output in `out`. */
  private pos = WINDOW_SIZE;
  /** End of output already handed to onOutput. */
  private emitted = WINDOW_SIZE;
  private totin = 0;
  private totout = 0;
  private last = 0;
  private memberDone = false;
  private magicSeen = 0;
  private prevByte = 0;
  private stalls = 0;
  private failure: unknown = null;
  private readonly checkpoints: Checkpoint[] = [];
  private readonly spans = new SpanHasher();
  /** CRC-32 and length of the current member's output, checked against its trailer natively. */
  private crc = 0;
  private memberLen = 0;
  /** The last 8 compressed bytes consumed before the current chunk (a trailer may straddle chunks). */
  private tail: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly spanSize: number,
    private readonly onOutput: (chunk: Uint8Array) => void,
  ) {
    if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
      throw invalidArgument(`gzip checkpointer: span size ${spanSize} is not a positive integer`);
    }
    if (inflateInit2(this.strm, AUTO_HEADER_WINDOW_BITS) !== Z_OK) throw internal('gzip checkpointer: inflateInit2 failed');
    this.strm.output = this.out;
    this.skipPakoCheck();
  }

  /**
   * pako's own CRC-32 took a quarter of the whole pass (measured: 18.6 s -> 14.6 s on a 571 MiB
   * layer without it); node:zlib's native crc32 does the same check for a fraction of that.
   */
  private skipPakoCheck(): void {
    (this.strm as unknown as { state: { wrap: number } }).state.wrap &= ~4;
  }

  /** Feed the next compressed chunk. Calls onOutput synchronously with uncompressed bytes (chunk valid only during the call). */
  push(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    try {
      this.consume(chunk);
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /** At end of input: verifies the gzip stream ended cleanly (all members complete, CRC/ISIZE ok), finishes the last span digest. */
  end(): CheckpointerResult {
    if (this.failure !== null) throw this.failure;
    if (this.magicSeen < 2) throw invalidArgument('layer is not gzip: bad magic');
    if (!this.memberDone) throw invalidArgument(`gzip stream truncated at compressed offset ${this.totin}`);
    this.emit();
    return {
      checkpoints: this.checkpoints,
      spanDigests: this.spans.finish(),
      compressedSize: this.totin,
      uncompressedSize: this.totout,
    };
  }

  private consume(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.checkMagic(chunk);
    const s = this.strm;
    s.input = chunk;
    s.next_in = 0;
    s.avail_in = chunk.length;
    let hashedFrom = 0;
    while (s.avail_in > 0) {
      if (this.memberDone) this.startNextMember();
      if (this.out.length - this.pos < MIN_FREE) this.slide();
      if (this.inflateStep()) continue;
      if (this.atAccessPoint()) hashedFrom = this.addCheckpoint(chunk, hashedFrom);
    }
    this.spans.update(chunk.subarray(hashedFrom));
    this.prevByte = chunk[chunk.length - 1];
    this.tail = lastBytes(this.tail, chunk, GZIP_TRAILER);
    this.emit();
  }

  /** One inflate call up to the next block boundary; returns true when a member ended. */
  private inflateStep(): boolean {
    const s = this.strm;
    s.next_out = this.pos;
    s.avail_out = this.out.length - this.pos;
    const availIn = s.avail_in;
    const ret = inflate(s, Z_BLOCK);
    const consumed = availIn - s.avail_in;
    const produced = s.next_out - this.pos;
    if (produced > 0) this.crc = crc32(this.out.subarray(this.pos, s.next_out), this.crc);
    this.memberLen += produced;
    this.totin += consumed;
    this.totout += produced;
    this.pos = s.next_out;
    if (ret === Z_STREAM_END) {
      this.checkTrailer();
      this.memberDone = true;
      return true;
    }
    if (ret !== Z_OK && ret !== Z_BUF_ERROR) throw this.corruption(ret);
    // A call may legitimately only advance inflate's state (e.g. an end-of-block code already in
    // its bit buffer); repeated calls without progress would spin forever.
    this.stalls = consumed === 0 && produced === 0 ? this.stalls + 1 : 0;
    if (this.stalls > 2) throw internal(`gzip checkpointer: inflate makes no progress at compressed offset ${this.totin}`);
    return false;
  }

  private startNextMember(): void {
    if (inflateReset2(this.strm, AUTO_HEADER_WINDOW_BITS) !== Z_OK) throw internal('gzip checkpointer: inflateReset2 failed');
    this.skipPakoCheck();
    this.memberDone = false;
    this.crc = 0;
    this.memberLen = 0;
  }

  /** The member's trailer (CRC-32, ISIZE, little-endian) is the 8 bytes inflate just consumed. */
  private checkTrailer(): void {
    const s = this.strm;
    if ((s as unknown as { state: { flags: number } }).state.flags === 0) {
      throw invalidArgument(`gzip stream corrupt at compressed offset ${this.totin}: a member is not gzip`);
    }
    const consumed = (s.input ?? new Uint8Array(0)).subarray(0, s.next_in);
    const t = consumed.length >= GZIP_TRAILER ? consumed.subarray(consumed.length - GZIP_TRAILER) : lastBytes(this.tail, consumed, GZIP_TRAILER);
    const view = new DataView(t.buffer, t.byteOffset, GZIP_TRAILER);
    // Offsets as zlib reports them: after the field that does not match.
    if (view.getUint32(0, true) !== this.crc >>> 0) throw invalidArgument(`gzip stream CRC mismatch at compressed offset ${this.totin - 4}`);
    if (view.getUint32(4, true) !== this.memberLen % 2 ** 32) throw invalidArgument(`gzip stream ISIZE mismatch at compressed offset ${this.totin}`);
  }

  private atAccessPoint(): boolean {
    const dt = this.strm.data_type;
    if ((dt & DT_BLOCK_BOUNDARY) === 0 || (dt & DT_LAST_BLOCK) !== 0) return false;
    return this.totout === 0 || this.totout - this.last > this.spanSize;
  }

  /** Records a checkpoint at the current position; returns the chunk offset hashed so far. */
  private addCheckpoint(chunk: Uint8Array, hashedFrom: number): number {
    const bits = this.strm.data_type & 7;
    const p = this.strm.next_in;
    this.spans.update(chunk.subarray(hashedFrom, p));
    // The partial byte belongs to both the span it ends and the span it starts (spec §2.3).
    const shared = bits === 0 ? undefined : p > 0 ? chunk[p - 1] : this.prevByte;
    this.spans.startSpan(shared);
    this.checkpoints.push({
      in: this.totin,
      out: this.totout,
      bits,
      window: this.out.slice(this.pos - WINDOW_SIZE, this.pos),
    });
    this.last = this.totout;
    return p;
  }

  private checkMagic(chunk: Uint8Array): void {
    const magic = [0x1f, 0x8b];
    for (let i = 0; this.magicSeen < 2 && i < chunk.length; i++, this.magicSeen++) {
      if (chunk[i] !== magic[this.magicSeen]) throw invalidArgument('layer is not gzip: bad magic');
    }
  }

  private corruption(ret: number): SociError {
    const msg = this.strm.msg || `zlib error ${ret}`;
    const at = `at compressed offset ${this.totin}`;
    if (msg === 'incorrect data check') return invalidArgument(`gzip stream CRC mismatch ${at}`);
    if (msg === 'incorrect length check') return invalidArgument(`gzip stream ISIZE mismatch ${at}`);
    return invalidArgument(`gzip stream corrupt ${at}: ${msg}`);
  }

  private emit(): void {
    if (this.pos === this.emitted) return;
    this.onOutput(this.out.subarray(this.emitted, this.pos));
    this.emitted = this.pos;
  }

  private slide(): void {
    this.emit();
    this.out.copyWithin(0, this.pos - WINDOW_SIZE, this.pos);
    this.pos = WINDOW_SIZE;
    this.emitted = WINDOW_SIZE;
  }
}
