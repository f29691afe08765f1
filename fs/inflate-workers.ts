/**
 * Span verification and inflation on worker threads. Node's zlib hands back a fresh Buffer per
 * span; on the main thread that is external memory, and a cold read of a layer (GiBs of fresh
 * buffers) made V8 mark the whole heap every ~100 ms: ~8 CPU-s of GC in a 20 s read on 2 cores.
 * A worker's heap is tiny, so its garbage is cheap; the span reaches the main thread as a
 * SpanBuffers buffer (shared memory) that the cache recycles, and the sha256 leaves the event
 * loop too.
 *
 * A span can also be begun while its bytes are still arriving from the registry: the thread
 * hashes each piece as it lands and, once the bytes have been coming for a few ms (a slow link),
 * inflates them as they come too, so the span is ready about one piece after its last byte
 * instead of one whole inflate (~2.5 ms for 1 MiB) later. Whole-span decodes run one at a time
 * per thread (they queue); arriving spans share the threads, as they mostly wait.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SociError, describe, unavailable } from '../errors/errors.js';
import type { SpanCodec } from '../ztoc/layer-spans.js';
import type { InflateJob, InflateRequest, InflateResponse } from './inflate-job.js';
import type { SpanBuffers } from './span-buffers.js';
import type { ArrivingSpan, DecodedSpan, SpanDecoder } from './span-decoder.js';

interface Pending {
  codec: SpanCodec;
  digest: string;
  compressed: Uint8Array;
  resolve(d: DecodedSpan): void;
  reject(e: unknown): void;
}

interface Running extends Pending {
  /** A whole-span decode; else a span whose bytes are arriving. */
  whole: boolean;
  /** A copy of the compressed bytes that were not in shared memory; retired with the job. */
  copy?: Buffer;
  output: Buffer;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Running>;
  /** A whole-span decode runs on this thread. */
  decoding: boolean;
}

/**
 * Arriving bytes are told to the thread in steps of at least this many bytes and this many ms
 * (and at the end): every step is a message and a zlib write on the thread pool, and a body
 * from a fast registry arrives in a few ms anyway, where steps would only add CPU (measured:
 * 4 parallel cold readers 10% slower with 64 KiB steps and no interval).
 */
const RECEIVED_STEP = 64 * 1024;
const RECEIVED_INTERVAL_MS = 2;

/**
 * A begun span is streamed through the inflater only after its bytes have been arriving this
 * long. At 1 Gbit/s half the bodies of a Range GET take < 3.5 ms; streaming those cost more CPU
 * than it hid (bench: 8.8 ms from the last byte to the demanded span inflated, median, against
 * 5.0 ms inflating it at once); over 100 Mbit/s a span takes ~40 ms and is streamed.
 */
const STREAM_AFTER_MS = 4;

/** Two threads keep both cores of a small machine inflating; more only add memory. */
export function defaultInflateThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export class InflateWorkers implements SpanDecoder {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private closed = false;
  private nextId = 1;
  /** Begun spans not answered or cancelled yet. */
  private arriving = 0;

  constructor(
    private readonly buffers: SpanBuffers,
    private readonly threads = defaultInflateThreads(),
    private readonly streamAfterMs = STREAM_AFTER_MS,
  ) {}

  /**
   * Starts the threads now: a thread's start (~50-150 ms on a busy machine) would otherwise
   * delay the first spans a container reads. Idle threads do not keep the process alive.
   */
  warm(): void {
    while (!this.closed && this.slots.length < this.threads) this.spawn();
  }

  decode(codec: SpanCodec, digest: string, compressed: Uint8Array): Promise<DecodedSpan> {
    if (this.closed) return Promise.reject(unavailable('span inflate workers are closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ codec, digest, compressed, resolve, reject });
      this.pump();
    });
  }

  begin(codec: SpanCodec, digest: string, compressed: Uint8Array): ArrivingSpan | undefined {
    if (this.closed || compressed.length === 0 || !(compressed.buffer instanceof SharedArrayBuffer)) return undefined;
    // Many spans arriving at once come from a fast registry: whole decodes, queued, use less
    // memory and CPU there, and a slow link rarely has more than a few spans on the way.
    if (this.arriving >= this.threads) return undefined;
    const slot = this.leastBusy();
    let settle!: Pick<Pending, 'resolve' | 'reject'>;
    const result = new Promise<DecodedSpan>((resolve, reject) => (settle = { resolve, reject }));
    // A cancelled span's result is nobody's business; a failed one is still reported to any awaiter.
    result.catch(() => undefined);
    const id = this.post(slot, { codec, digest, compressed, ...settle }, false);
    let sent = 0;
    let sentAt = performance.now();
    return {
      result,
      received: (bytes) => {
        const all = bytes >= compressed.length;
        if (!slot.jobs.has(id) || bytes <= sent) return;
        if (!all && (bytes - sent < RECEIVED_STEP || performance.now() - sentAt < RECEIVED_INTERVAL_MS)) return;
        sent = Math.min(bytes, compressed.length);
        sentAt = performance.now();
        slot.worker.postMessage({ kind: 'received', id, bytes: sent } satisfies InflateRequest);
      },
      cancel: () => {
        // Its output buffer is left to the GC: the thread may still be writing to it.
        if (!slot.jobs.delete(id)) return;
        this.arriving--;
        slot.worker.postMessage({ kind: 'cancel', id } satisfies InflateRequest);
        this.idle(slot);
      },
    };
  }

  /** Stops the threads; queued and running spans fail as unavailable. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(unavailable('span inflate workers are closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => !s.decoding) ?? (this.slots.length < this.threads ? this.spawn() : undefined);
      if (!slot) return;
      slot.decoding = true;
      this.post(slot, this.queue.shift() as Pending, true);
    }
  }

  /** The thread with the fewest jobs; a new one while there is room and all have some. */
  private leastBusy(): Slot {
    const least = this.slots.reduce<Slot | undefined>((best, s) => (!best || s.jobs.size < best.jobs.size ? s : best), undefined);
    return least && (least.jobs.size === 0 || this.slots.length >= this.threads) ? least : this.spawn();
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(new URL('./inflate-worker.js', import.meta.url)), jobs: new Map(), decoding: false };
    slot.worker.on('message', (res: InflateResponse) => this.finish(slot, res));
    slot.worker.on('error', (err) => this.lose(slot, err));
    slot.worker.on('exit', (code) => this.lose(slot, `exit code ${code}`));
    // Only a running job keeps the process alive.
    slot.worker.unref();
    this.slots.push(slot);
    return slot;
  }

  /** Hands a span to a thread; its id. */
  private post(slot: Slot, p: Pending, whole: boolean): number {
    const { checkpoint, uncompressedSize } = p.codec;
    // The bytes are read in place when they are shared memory already (the span reader
    // fetches into SpanBuffers); its caller keeps them intact until the decode settles.
    const shared = p.compressed.buffer instanceof SharedArrayBuffer;
    const copy = shared ? undefined : this.buffers.take(p.compressed.length);
    copy?.set(p.compressed);
    const input = copy ?? p.compressed;
    // A byte of room past the span: the thread's inflate then sees output beyond it in place.
    const output = this.buffers.take(uncompressedSize + 1).subarray(0, uncompressedSize);
    const id = this.nextId++;
    slot.jobs.set(id, { ...p, whole, copy, output });
    if (!whole) this.arriving++;
    const job: InflateJob = {
      algorithm: p.codec.algorithm,
      checkpointIn: checkpoint.in,
      checkpointOut: checkpoint.out,
      bits: checkpoint.bits,
      uncompressedSize,
      lastSpan: p.codec.lastSpan,
      digest: p.digest,
      // Its own 32 KiB: a view into the zTOC would clone the whole zTOC into the message.
      window: checkpoint.window.slice(),
      input: input.buffer as SharedArrayBuffer,
      inputOffset: input.byteOffset,
      compressedLength: input.length,
      output: output.buffer as SharedArrayBuffer,
      streamAfterMs: this.streamAfterMs,
    };
    slot.worker.ref();
    slot.worker.postMessage({ kind: whole ? 'decode' : 'begin', id, job } satisfies InflateRequest);
    return id;
  }

  private finish(slot: Slot, { id, reply }: InflateResponse): void {
    const job = slot.jobs.get(id);
    if (!job) return;
    slot.jobs.delete(id);
    if (job.whole) slot.decoding = false;
    else this.arriving--;
    this.idle(slot);
    if (job.copy) this.buffers.retire(job.copy);
    if ('sha256' in reply) job.resolve({ data: job.output, sha256: reply.sha256 });
    else {
      this.buffers.retire(job.output);
      if ('mismatch' in reply) job.resolve({ mismatch: reply.mismatch });
      else job.reject(new SociError(reply.error.kind, reply.error.message));
    }
    this.pump();
  }

  private idle(slot: Slot): void {
    if (slot.jobs.size === 0) slot.worker.unref();
  }

  /** A worker died (a bug or out of memory): its spans fail, the next span gets a new thread. */
  private lose(slot: Slot, cause: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    // Its buffers are left to the GC: the thread may have been stopped in the middle of a write.
    for (const job of slot.jobs.values()) {
      if (!job.whole) this.arriving--;
      job.reject(unavailable(`span inflate worker failed: ${describe(cause)}`));
    }
    slot.jobs.clear();
    if (!this.closed) this.pump();
  }
}
