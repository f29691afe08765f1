/**
 * One gzip span inflated while its compressed bytes arrive, so a fetched span is ready moments
 * after its last byte instead of one whole inflate later. Only the common case: the span lies
 * inside one gzip member. Anything else (a member ending inside the span, corrupt data, a wrong
 * size) makes end() answer false, and the caller inflates the span whole with inflateSpan,
 * which handles those cases and names the error. Nothing here is trusted before the caller has
 * checked the span's digest.
 */
import type { InflateRaw } from 'node:zlib';
import { primedHead } from './deflate-prefix.js';
import { rawEngine } from './span-inflate.js';
import type { Checkpoint } from './types.js';

/** Output, in order: `chunk` is the span's bytes from offset `at`. */
export type SpanOutput = (chunk: Buffer, at: number) => void;

export class SpanInflateStream {
  private readonly engine: InflateRaw;
  private readonly closed: Promise<void>;
  private size = 0;
  /** Bytes handed to the engine, the primed head included. */
  private fed = 0;
  private started = false;
  private failed = false;
  /** The last span's output reached the layer's end; the rest (tar padding) was dropped. */
  private truncated = false;

  constructor(
    private readonly cp: Checkpoint,
    private readonly expectedSize: number,
    private readonly lastSpan: boolean,
    private readonly output: SpanOutput,
    dest?: Uint8Array,
  ) {
    // One output buffer for the span: zlib still hands over what each write produced, and
    // 64 KiB chunks made 1 MiB spans ~25% slower (more thread pool round trips). With `dest`
    // (room for a byte past the span), that buffer is dest, and chunks are views into it.
    this.engine = rawEngine(cp, expectedSize, dest);
    this.closed = new Promise((resolve) => this.engine.once('close', resolve));
    this.engine.on('data', (chunk: Buffer) => this.take(chunk));
    this.engine.on('error', () => {
      this.failed = true;
    });
  }

  /** The next compressed bytes of the span; the caller keeps them intact until end() settles. */
  push(piece: Uint8Array): void {
    if (piece.length === 0 || this.engine.destroyed) return;
    if (!this.started && this.cp.bits !== 0) {
      // The partial first byte's live bits, behind empty blocks of the same length (mod 8).
      this.write(primedHead(this.cp.bits, piece[0]));
      piece = piece.subarray(1);
    }
    this.started = true;
    if (piece.length > 0) this.write(piece);
  }

  /** All bytes pushed: true when the output was exactly the span (then every byte went to `output`). */
  async end(): Promise<boolean> {
    if (!this.engine.destroyed) this.engine.end();
    await this.closed;
    if (this.failed || this.size !== this.expectedSize) return false;
    // An engine that stopped early met the end of a member: inflateSpan knows what follows.
    return this.truncated || this.engine.bytesWritten === this.fed;
  }

  /** Stops the work; end() answers false. */
  destroy(): void {
    this.failed = true;
    this.engine.destroy();
  }

  private write(piece: Uint8Array): void {
    this.fed += piece.length;
    this.engine.write(piece);
  }

  private take(chunk: Buffer): void {
    if (this.failed || this.truncated) return;
    const room = this.expectedSize - this.size;
    if (chunk.length > room) {
      if (!this.lastSpan) return this.destroy();
      this.truncated = true;
      this.engine.destroy();
      chunk = chunk.subarray(0, room);
    }
    if (chunk.length > 0) this.output(chunk, this.size);
    this.size += chunk.length;
  }
}
