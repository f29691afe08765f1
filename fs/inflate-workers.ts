/**
 * Span verification and inflation on worker threads. Node's zlib hands back a fresh Buffer per
 * span; on the main thread that is external memory, and a cold read of a layer (GiBs of fresh
 * buffers) made V8 mark the whole heap every ~100 ms: ~8 CPU-s of GC in a 20 s read on 2 cores.
 * A worker's heap is tiny, so its garbage is cheap; the span reaches the main thread as a
 * SpanBuffers buffer (shared memory) that the cache recycles, and the sha256 leaves the event
 * loop too.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SociError, describe, unavailable } from '../errors/errors.js';
import type { SpanCodec } from '../ztoc/layer-spans.js';
import type { InflateJob, InflateReply } from './inflate-job.js';
import type { SpanBuffers } from './span-buffers.js';
import type { DecodedSpan, SpanDecoder } from './span-decoder.js';

interface Pending {
  codec: SpanCodec;
  digest: string;
  compressed: Uint8Array;
  resolve(d: DecodedSpan): void;
  reject(e: unknown): void;
}

interface Running extends Pending {
  /** A copy of the compressed bytes that were not in shared memory; retired with the job. */
  copy?: Buffer;
  output: Buffer;
}

interface Slot {
  worker: Worker;
  job?: Running;
}

/** Two threads keep both cores of a small machine inflating; more only add memory. */
export function defaultInflateThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export class InflateWorkers implements SpanDecoder {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private closed = false;

  constructor(
    private readonly buffers: SpanBuffers,
    private readonly threads = defaultInflateThreads(),
  ) {}

  decode(codec: SpanCodec, digest: string, compressed: Uint8Array): Promise<DecodedSpan> {
    if (this.closed) return Promise.reject(unavailable('span inflate workers are closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ codec, digest, compressed, resolve, reject });
      this.pump();
    });
  }

  /** Stops the threads; queued and running spans fail as unavailable. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(unavailable('span inflate workers are closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => !s.job) ?? (this.slots.length < this.threads ? this.spawn() : undefined);
      if (!slot) return;
      this.start(slot, this.queue.shift() as Pending);
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(new URL('./inflate-worker.js', import.meta.url)) };
    slot.worker.on('message', (reply: InflateReply) => this.finish(slot, reply));
    slot.worker.on('error', (err) => this.lose(slot, err));
    slot.worker.on('exit', (code) => this.lose(slot, `exit code ${code}`));
    // Only a running job keeps the process alive.
    slot.worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, p: Pending): void {
    const { checkpoint, uncompressedSize } = p.codec;
    // The bytes are read in place when they are shared memory already (the span reader
    // fetches into SpanBuffers); its caller keeps them intact until the decode settles.
    const shared = p.compressed.buffer instanceof SharedArrayBuffer;
    const copy = shared ? undefined : this.buffers.take(p.compressed.length);
    copy?.set(p.compressed);
    const input = copy ?? p.compressed;
    const output = this.buffers.take(uncompressedSize);
    slot.job = { ...p, copy, output };
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
    };
    slot.worker.ref();
    slot.worker.postMessage(job);
  }

  private finish(slot: Slot, reply: InflateReply): void {
    const job = slot.job;
    if (!job) return;
    slot.job = undefined;
    slot.worker.unref();
    if (job.copy) this.buffers.retire(job.copy);
    if ('sha256' in reply) job.resolve({ data: job.output, sha256: reply.sha256 });
    else {
      this.buffers.retire(job.output);
      if ('mismatch' in reply) job.resolve({ mismatch: reply.mismatch });
      else job.reject(new SociError(reply.error.kind, reply.error.message));
    }
    this.pump();
  }

  /** A worker died (a bug or out of memory): its span fails, the next span gets a new thread. */
  private lose(slot: Slot, cause: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    // Its buffers are left to the GC: the thread may have been stopped in the middle of a write.
    slot.job?.reject(unavailable(`span inflate worker failed: ${describe(cause)}`));
    slot.job = undefined;
    if (!this.closed) this.pump();
  }
}
