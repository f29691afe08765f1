/**
 * The spans of one Range GET, begun on the decoder while the body arrives (when the decoder
 * can; see InflateWorkers). A body read a second time (the registry client retried) starts
 * over in a new buffer: the spans are then decoded whole once it is complete.
 */
import type { BodyAlloc } from '../fetcher/registry/http.js';
import type { LayerSpans } from '../ztoc/layer-spans.js';
import { spanCodec } from '../ztoc/layer-spans.js';
import type { SpanBuffers } from './span-buffers.js';
import type { ArrivingSpan, DecodedSpan, SpanDecoder } from './span-decoder.js';

export class ArrivingRun {
  private begun: (ArrivingSpan | undefined)[] = [];
  private target?: Buffer;
  private bodies = 0;
  private readonly base: number;
  private readonly length: number;

  constructor(
    private readonly decoder: SpanDecoder | undefined,
    private readonly spans: LayerSpans,
    private readonly ids: readonly number[],
  ) {
    const ranges = spans.ranges;
    this.base = ranges[ids[0]].compressedStart;
    this.length = ranges[ids[ids.length - 1]].compressedEnd - this.base;
  }

  /** The body's memory, from `buffers`, telling the begun spans as bytes land in it. */
  alloc(buffers: SpanBuffers): BodyAlloc {
    return Object.assign(
      (size: number): Buffer => {
        const buf = buffers.take(size);
        if (++this.bodies === 1 && size === this.length) this.start(buf);
        else this.cancel();
        return buf;
      },
      { received: (bytes: number): void => this.tell(bytes) },
    );
  }

  /** The body is complete in `bytes`: per span, its begun decode, if it ran on these bytes. */
  complete(bytes: Buffer): (Promise<DecodedSpan> | undefined)[] {
    if (bytes !== this.target) this.cancel();
    // A source that does not report progress (a file) completes the spans here.
    this.tell(bytes.length);
    return this.ids.map((_id, i) => this.begun[i]?.result);
  }

  cancel(): void {
    for (const a of this.begun) a?.cancel();
    this.begun = [];
  }

  private start(buf: Buffer): void {
    const decoder = this.decoder;
    if (!decoder?.begin) return;
    this.target = buf;
    const ranges = this.spans.ranges;
    this.begun = this.ids.map((id) => {
      const r = ranges[id];
      return decoder.begin?.(spanCodec(this.spans, id), this.spans.spanDigests[id], buf.subarray(r.compressedStart - this.base, r.compressedEnd - this.base));
    });
  }

  private tell(bytes: number): void {
    const ranges = this.spans.ranges;
    this.begun.forEach((a, i) => a?.received(bytes - (ranges[this.ids[i]].compressedStart - this.base)));
  }
}
