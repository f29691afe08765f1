/**
 * The read path of one lazily fetched layer: uncompressed range -> spans -> memory cache,
 * disk cache, or one Range GET for each run of adjacent missing spans -> verify against the
 * zTOC's span digests -> inflate -> cache -> serve. One fetch per span however many readers
 * wait on it; fetches go through the shared FetchLimiter.
 */
import { SociError, describe, invalidArgument, unavailable } from '../errors/errors.js';
import { decompressSpan, type LayerSpans } from '../ztoc/layer-spans.js';
import { spanIdForOffset } from '../ztoc/spans.js';
import { raceAbort, type SpanSource } from '../fetcher/span-source.js';
import type { FetchLimiter, FetchPriority } from './fetch-limiter.js';
import { silentLogger, type FsLogger } from './fs-logger.js';
import { sha256Hex, type SpanCache } from './span-cache.js';

export interface SpanReaderMetrics {
  /** One Range GET issued for `spans` spans. */
  request?(priority: FetchPriority, spans: number, compressedBytes: number): void;
  spanFetched?(priority: FetchPriority, compressedBytes: number): void;
  fetchFailed?(priority: FetchPriority, result: 'error' | 'digest_mismatch'): void;
  /** Time of one Range GET (retries included), when it succeeded. */
  fetchDuration?(priority: FetchPriority, seconds: number): void;
}

export interface LayerSpanReaderOptions {
  layerDigest: string;
  spans: LayerSpans;
  source: SpanSource;
  cache: SpanCache;
  limiter: FetchLimiter;
  logger?: FsLogger;
  metrics?: SpanReaderMetrics;
  /** config blob.fetching_timeout_sec, in ms: one span fetch, queueing and retries included. */
  fetchTimeoutMs?: number;
  /** config blob.max_span_verification_retries: extra GETs of a span whose digest does not match. */
  verificationRetries?: number;
  /** Cap on one coalesced GET; a registry adds ~4 ms per request, so adjacent spans share one. */
  maxCoalesceBytes?: number;
  /** Told about every demand read (the background fetcher restarts its quiet period). */
  onDemandRead?: () => void;
  /**
   * config blob.readahead_spans: spans loaded ahead of a reader that is walking through the
   * layer (it read the two spans before this one), so fetch and inflate overlap its reads.
   */
  readaheadSpans?: number;
}

interface Deferred {
  id: number;
  promise: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
  promote(): void;
}

const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_COALESCE = 32 << 20;
const DEFAULT_READAHEAD = 4;
/** Span ids remembered for spotting a sequential reader; a few concurrent readers fit. */
const RECENT_SPANS = 32;
/** A span counts as read through when this share of its bytes was read (tar headers are not). */
const STREAMED_FRACTION = 0.75;
const EMPTY = Buffer.alloc(0);

export class LayerSpanReader {
  readonly layerDigest: string;
  private readonly spans: LayerSpans;
  private readonly inflight = new Map<number, Deferred>();
  /** Disk writes of fetched spans still running; their readers were answered already. */
  private readonly writes = new Map<number, Promise<void>>();
  /** Recently read span ids, oldest first, with the bytes read from each. */
  private readonly recent = new Map<number, number>();
  private readonly log: FsLogger;
  private readonly metrics: SpanReaderMetrics;
  private readonly size: number;

  constructor(private readonly opts: LayerSpanReaderOptions) {
    this.layerDigest = opts.layerDigest;
    this.spans = opts.spans;
    this.log = opts.logger ?? silentLogger;
    this.metrics = opts.metrics ?? {};
    this.size = this.spans.ranges.at(-1)?.uncompressedEnd ?? 0;
  }

  get spanCount(): number {
    return this.spans.ranges.length;
  }

  get uncompressedSize(): number {
    return this.size;
  }

  compressedSize(id: number): number {
    const r = this.spans.ranges[id];
    return r.compressedEnd - r.compressedStart;
  }

  isLocal(id: number): boolean {
    return this.opts.cache.hasOnDisk(this.layerDigest, id);
  }

  /**
   * Uncompressed layer bytes [offset, offset + length), shorter at the end of the layer.
   * The result may share memory with the cache: callers copy it, never write to it.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw invalidArgument(`layer ${this.layerDigest}: bad read range ${offset}+${length}`);
    }
    this.opts.onDemandRead?.();
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return EMPTY;
    const ranges = this.spans.ranges;
    const first = spanIdForOffset(ranges, offset);
    const last = spanIdForOffset(ranges, end - 1);
    // The second read into a span (a file streamed by kernel readahead, or neighbours read
    // together) loads it whole; only a first, lone read takes just its range from disk.
    const streaming = this.recent.has(first);
    const sequential = this.noteRead(offset, end, first, last);
    // serve() claims its spans before its first await, so readahead queues behind them.
    const served = this.serve(first, last, offset, end, streaming || sequential);
    if (sequential) this.readAhead(last);
    return served;
  }

  /** Resolves once every fetched span handed to readers so far is on disk too (or failed to be written). */
  async diskWritesDone(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes.values());
  }

  private async serve(first: number, last: number, offset: number, end: number, streaming: boolean): Promise<Buffer> {
    const ranges = this.spans.ranges;
    if (first === last) {
      const r = ranges[first];
      const from = offset - r.uncompressedStart;
      const to = end - r.uncompressedStart;
      const mem = this.opts.cache.getMemory(this.layerDigest, first);
      if (mem) return mem.subarray(from, to);
      // On a cold disk a small pread costs almost as much as one large read of the whole span.
      if (!streaming && !this.inflight.has(first)) {
        const part = await this.opts.cache.readPart(this.layerDigest, first, this.uncompressedSpanSize(first), from, to);
        if (part) return part;
      }
      return (await this.load(first, last, 'demand')[0]).subarray(from, to);
    }
    const parts = await Promise.all(this.load(first, last, 'demand'));
    const out = Buffer.allocUnsafe(end - offset);
    parts.forEach((span, i) => {
      const r = ranges[first + i];
      const from = Math.max(offset, r.uncompressedStart);
      const to = Math.min(end, r.uncompressedEnd);
      span.copy(out, from - offset, from - r.uncompressedStart, to - r.uncompressedStart);
    });
    return out;
  }

  /**
   * Remembers what a read touched; true when earlier reads read most of the two spans before
   * `last`: a stream through the layer (tar, cp, cat of a big file). Two, so a small file that
   * crosses one span boundary fetches only its own spans; "most of", so page faults scattered
   * over a big mmap'd library (a few windows per span) fetch only the spans they touch.
   */
  private noteRead(offset: number, end: number, first: number, last: number): boolean {
    const readThrough = (id: number): boolean => id >= 0 && (this.recent.get(id) ?? 0) >= STREAMED_FRACTION * this.uncompressedSpanSize(id);
    const sequential = readThrough(last - 1) && readThrough(last - 2);
    const ranges = this.spans.ranges;
    for (let id = first; id <= last; id++) {
      const r = ranges[id];
      const bytes = Math.min(end, r.uncompressedEnd) - Math.max(offset, r.uncompressedStart);
      const before = this.recent.get(id);
      if (before === undefined && this.recent.size >= RECENT_SPANS) this.recent.delete(this.recent.keys().next().value as number);
      this.recent.set(id, (before ?? 0) + bytes);
    }
    return sequential;
  }

  private uncompressedSpanSize(id: number): number {
    const r = this.spans.ranges[id];
    return r.uncompressedEnd - r.uncompressedStart;
  }

  /** Starts loading the spans after `last` that are neither in memory nor in flight. */
  private readAhead(last: number): void {
    const n = this.opts.readaheadSpans ?? DEFAULT_READAHEAD;
    const stop = Math.min(last + n, this.spanCount - 1);
    let from = -1;
    for (let id = last + 1; id <= stop + 1; id++) {
      const wanted = id <= stop && !this.inflight.has(id) && !this.opts.cache.hasInMemory(this.layerDigest, id);
      if (wanted && from < 0) from = id;
      if (!wanted && from >= 0) {
        this.load(from, id - 1, 'demand');
        from = -1;
      }
    }
  }

  /** Makes a span local on disk (the background fetcher's entry point). */
  async fetchSpan(id: number, priority: FetchPriority): Promise<void> {
    if (!Number.isInteger(id) || id < 0 || id >= this.spanCount) throw invalidArgument(`layer ${this.layerDigest}: no span ${id}`);
    if (this.isLocal(id)) return;
    const mem = this.opts.cache.getMemory(this.layerDigest, id);
    if (mem) return this.opts.cache.put(this.layerDigest, id, mem);
    await this.load(id, id, priority)[0];
    await this.writes.get(id);
  }

  /**
   * One promise per span of [first, last]. Spans nobody is loading are claimed synchronously,
   * so two readers can never start two fetches of one span.
   */
  private load(first: number, last: number, priority: FetchPriority): Promise<Buffer>[] {
    const out: Promise<Buffer>[] = [];
    const claimed: Deferred[] = [];
    for (let id = first; id <= last; id++) {
      const mem = this.opts.cache.getMemory(this.layerDigest, id);
      if (mem) {
        out.push(Promise.resolve(mem));
        continue;
      }
      const running = this.inflight.get(id);
      if (running) {
        if (priority === 'demand') running.promote();
        out.push(running.promise);
        continue;
      }
      const d = deferred(id);
      this.inflight.set(id, d);
      claimed.push(d);
      out.push(d.promise);
    }
    if (claimed.length > 0) void this.fill(claimed, priority);
    return out;
  }

  private async fill(claimed: Deferred[], priority: FetchPriority): Promise<void> {
    const missing: Deferred[] = [];
    await Promise.all(claimed.map(async (d) => {
      const hit = await this.opts.cache.get(this.layerDigest, d.id, this.uncompressedSpanSize(d.id)).catch(() => undefined);
      if (hit) this.settle(d, hit);
      else missing.push(d);
    }));
    missing.sort((a, b) => a.id - b.id);
    for (const run of this.runs(missing)) this.fetchRun(run, priority);
  }

  /** Consecutive span ids are consecutive compressed ranges: each run becomes one GET. */
  private runs(missing: Deferred[]): Deferred[][] {
    const cap = this.opts.maxCoalesceBytes ?? DEFAULT_COALESCE;
    const out: Deferred[][] = [];
    let run: Deferred[] = [];
    let bytes = 0;
    for (const d of missing) {
      const n = this.compressedSize(d.id);
      const prev = run.at(-1);
      if (prev && (prev.id + 1 !== d.id || bytes + n > cap)) {
        out.push(run);
        run = [];
        bytes = 0;
      }
      run.push(d);
      bytes += n;
    }
    if (run.length > 0) out.push(run);
    return out;
  }

  private fetchRun(run: Deferred[], priority: FetchPriority): void {
    const timeoutMs = this.opts.fetchTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    // A timer of our own, not AbortSignal.timeout: that one is unref'd, and a read waiting on a
    // stalled fetch must keep the process alive until it fails.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(timeoutError(timeoutMs)), timeoutMs);
    const signal = ac.signal;
    const job = this.opts.limiter.schedule(priority, () => raceAbort(this.fetchAndServe(run, priority, signal), signal, 'span fetch'), signal);
    for (const d of run) d.promote = job.promote;
    job.promise
      .catch((err: unknown) => {
        for (const d of run) this.fail(d, priority, err);
      })
      .finally(() => clearTimeout(timer));
  }

  private async fetchAndServe(run: Deferred[], priority: FetchPriority, signal: AbortSignal): Promise<void> {
    const ranges = this.spans.ranges;
    const base = ranges[run[0].id].compressedStart;
    const end = ranges[run[run.length - 1].id].compressedEnd;
    this.metrics.request?.(priority, run.length, end - base);
    const t0 = performance.now();
    const bytes = await this.opts.source.fetchCompressed(base, end, signal);
    this.metrics.fetchDuration?.(priority, (performance.now() - t0) / 1000);
    if (bytes.length !== end - base) throw unavailable(`source returned ${bytes.length} bytes for [${base}, ${end})`);
    await Promise.all(run.map(async (d) => {
      const r = ranges[d.id];
      try {
        const compressed = await this.verified(d.id, bytes.subarray(r.compressedStart - base, r.compressedEnd - base), priority, signal);
        const data = await decompressSpan(this.spans, d.id, compressed);
        this.metrics.spanFetched?.(priority, compressed.length);
        // put() stores in memory before its first await; readers need not wait for the disk.
        const stored = this.opts.cache.put(this.layerDigest, d.id, data);
        this.writes.set(d.id, stored);
        this.settle(d, data);
        await stored;
        if (this.writes.get(d.id) === stored) this.writes.delete(d.id);
      } catch (err) {
        this.fail(d, priority, err);
      }
    }));
  }

  /** The span's compressed bytes once they match the zTOC digest, refetching a bad span up to the configured retries. */
  private async verified(id: number, compressed: Buffer, priority: FetchPriority, signal: AbortSignal): Promise<Buffer> {
    const r = this.spans.ranges[id];
    const retries = this.opts.verificationRetries ?? 0;
    for (let attempt = 0; ; attempt++) {
      const got = `sha256:${await sha256Hex(compressed)}`;
      const want = this.spans.spanDigests[id];
      if (got === want) return compressed;
      const mismatch = new DigestMismatch(`span ${id} digest mismatch: expected ${want}, got ${got}`);
      if (attempt >= retries) throw mismatch;
      this.log.warn({ layer: this.layerDigest, span: id, attempt: attempt + 1 }, `layer ${this.layerDigest}: ${mismatch.message}; fetching again`);
      this.metrics.request?.(priority, 1, r.compressedEnd - r.compressedStart);
      compressed = await this.opts.source.fetchCompressed(r.compressedStart, r.compressedEnd, signal);
    }
  }

  private settle(d: Deferred, data: Buffer): void {
    if (this.inflight.get(d.id) === d) this.inflight.delete(d.id);
    d.resolve(data);
  }

  /** Not cached, and no longer in flight: the next read of this span tries again. */
  private fail(d: Deferred, priority: FetchPriority, cause: unknown): void {
    if (this.inflight.get(d.id) !== d) return;
    this.inflight.delete(d.id);
    const kind = cause instanceof SociError ? cause.kind : 'unavailable';
    const err = new SociError(kind, `layer ${this.layerDigest} span ${d.id}: ${describe(cause)}`, { cause });
    this.metrics.fetchFailed?.(priority, cause instanceof DigestMismatch ? 'digest_mismatch' : 'error');
    this.log.error({ layer: this.layerDigest, span: d.id, priority, err: describe(cause) }, err.message);
    d.reject(err);
  }
}

/** The registry's bytes for a span are not the ones the zTOC names. */
class DigestMismatch extends SociError {
  constructor(message: string) {
    super('invalid-argument', message);
  }
}

function deferred(id: number): Deferred {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A span loaded only to warm the cache may have no reader left to observe its failure.
  promise.catch(() => undefined);
  return { id, promise, resolve, reject, promote: () => undefined };
}

function timeoutError(ms: number): SociError {
  return unavailable(`span fetch timed out after ${ms / 1000} s`);
}
