import { createHash, type Hash } from 'node:crypto';

/**
 * Streams compressed bytes into per-span sha256 digests. Spans are opened in order; the caller
 * feeds each byte to the span(s) it belongs to, so the blob never has to be held in memory.
 */
export class SpanHasher {
  private hash: Hash | null = null;
  private readonly digests: string[] = [];

  /** Add bytes to the open span (ignored before the first span, e.g. the gzip header). */
  update(bytes: Uint8Array): void {
    if (this.hash !== null && bytes.length > 0) this.hash.update(bytes);
  }

  /** Close the open span and open the next one, seeded with the byte shared with its predecessor. */
  startSpan(sharedByte?: number): void {
    this.closeSpan();
    this.hash = createHash('sha256');
    if (sharedByte !== undefined) this.hash.update(Uint8Array.of(sharedByte));
  }

  /** Close the last span; returns `sha256:<hex>` per span. */
  finish(): string[] {
    this.closeSpan();
    return this.digests;
  }

  private closeSpan(): void {
    if (this.hash === null) return;
    this.digests.push(`sha256:${this.hash.digest('hex')}`);
    this.hash = null;
  }
}
