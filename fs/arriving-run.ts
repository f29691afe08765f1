/**
 * The spans of one Range GET, each begun on the decoder as its first bytes arrive (when the
 * decoder can; see InflateWorkers), so its output buffer is taken only then. A body read a
 * second time (the registry client retried) starts over in a new buffer: its spans are then
 * decoded whole once it is complete, as are spans of a source that does not report progress.
 */
import type { BodyAlloc } from '../fetcher/registry/http.js';
import type { LayerSpans } from '../ztoc/layer-spans.js';
import { spanCodec } from '../ztoc/layer-spans.js';
import type { SpanBuffers } from './span-buffers.js';
import type { ArrivingSpan, DecodedSpan, SpanDecoder } from './span-decoder.js';

export class ArrivingRun {
  private readonly begun: (ArrivingSpan | undefined)[] = [];
  /** The body's buffer while spans may be begun in it. */
  private target?: Buffer;
  private bodies = 0;
  /** Where each span lies in the body (neighbours share a byte when a checkpoint is mid-byte). */
  private readonly starts: number[];
  private readonly ends: number[];
  private readonly length: number;

  constructor(
    private readonly decoder: SpanDecoder | undefined,
    private readonly spans: LayerSpans,
    private readonly ids: readonly number[],
  ) {
    const ranges = spans.ranges;
    const base = ranges[ids[0]].compressedStart;
    this.starts = ids.map((id) => ranges[id].compressedStart - base);
    this.ends = ids.map((id) => ranges[id].compressedEnd - base);
    this.length = this.ends[this.ends.length - 1];
  }

  /** The body's memory, from `buffers`, beginning and telling spans as bytes land in it. */
  alloc(buffers: SpanBuffers): BodyAlloc {
    return Object.assign(
      (size: number): Buffer => {
        const buf = buffers.take(size);
        this.cancel();
        if (++this.bodies === 1 && size === this.length && this.decoder?.begin) this.target = buf;
        return buf;
      },
      { received: (bytes: number): void => this.tell(bytes) },
    );
  }

  /** The body is complete in `bytes`: per span, its begun decode, if one ran on these bytes. */
  complete(bytes: Buffer): (Promise<DecodedSpan> | undefined)[] {
    if (bytes !== this.target) this.cancel();
    for (const [i, a] of this.begun.entries()) a?.received(bytes.length - this.starts[i]);
    return this.ids.map((_id, i) => this.begun[i]?.result);
  }

  cancel(): void {
    for (const a of this.begun) a?.cancel();
    this.begun.length = 0;
    this.target = undefined;
  }

  private tell(bytes: number): void {
    const buf = this.target;
    if (!buf) return;
    while (this.begun.length < this.ids.length && bytes > this.starts[this.begun.length]) this.begin(buf, this.begun.length);
    for (const [i, a] of this.begun.entries()) a?.received(bytes - this.starts[i]);
  }

  private begin(buf: Buffer, i: number): void {
    const id = this.ids[i];
    this.begun.push(this.decoder?.begin?.(spanCodec(this.spans, id), this.spans.spanDigests[id], buf.subarray(this.starts[i], this.ends[i])));
  }
}
