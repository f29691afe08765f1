import { invalidArgument } from '../errors/errors.js';
import { SpanHasher } from './span-hasher.js';
import type { CheckpointerResult } from './gzip-checkpointer.js';

/**
 * The uncompressed-layer counterpart of GzipCheckpointer: bytes pass through unchanged and
 * spans are the fixed ranges [i*spanSize, min((i+1)*spanSize, size)) of upstream's TarZinfo.
 */
export class PlainSpanner {
  private size = 0;
  private readonly spans = new SpanHasher();

  constructor(
    private readonly spanSize: number,
    private readonly onOutput: (chunk: Uint8Array) => void,
  ) {
    if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
      throw invalidArgument(`plain spanner: span size ${spanSize} is not a positive integer`);
    }
  }

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; ) {
      const inSpan = this.size % this.spanSize;
      if (inSpan === 0) this.spans.startSpan();
      const take = Math.min(chunk.length - i, this.spanSize - inSpan);
      this.spans.update(chunk.subarray(i, i + take));
      i += take;
      this.size += take;
    }
    if (chunk.length > 0) this.onOutput(chunk);
  }

  end(): CheckpointerResult {
    return { checkpoints: [], spanDigests: this.spans.finish(), compressedSize: this.size, uncompressedSize: this.size };
  }
}
