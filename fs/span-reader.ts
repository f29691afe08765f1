/**
 * The read path of one lazily fetched layer: uncompressed range -> spans -> memory cache,
 * disk cache, or one Range GET for each run of adjacent missing spans -> verify against the
 * zTOC's span digests -> inflate -> cache -> serve. One fetch per span however many readers
 * wait on it; fetches go through the shared FetchLimiter. With worker threads, a span is hashed
 * and inflated while its bytes arrive (ArrivingRun), and served once the digest matches.
 */
import { SociError, describe, invalidArgument, unavailable } from '../errors/errors.js';
import { spanCodec, type LayerSpans } from '../ztoc/layer-spans.js';
import { spanIdForOffset } from '../ztoc/spans.js';
import { raceAbort, type SpanSource } from '../fetcher/span-source.js';
import type { FetchLimiter, FetchPriority } from './fetch-limiter.js';
import { silentLogger, type FsLogger } from './fs-logger.js';
import type { SpanCache } from './span-cache.js';
import { ArrivingRun } from './arriving-run.js';
import { timedBody, type LinkCostModel } from './link-estimate.js';
import { inThreadDecoder, type DecodedSpan, type SpanDecoder } from './span-decoder.js';

export interface SpanReaderMetrics {
  /** One Range GET issued for `spans` spans. */
  request?(priority: FetchPriority, spans: number, compressedBytes: number): void;
  spanFetched?(priority: FetchPriority, compressedBytes: number): void;
  fetchFailed?(priority: FetchPriority, result: 'error' | 'digest_mismatch'): void;
  /** Time of one Range GET (retries included), when it succeeded. */
  fetchDuration?(priority: FetchPriority, seconds: number): void;
  /** From a GET's last byte until one of its spans was verified and inflated. */
  decodeWait?(priority: FetchPriority, seconds: number): void;
  /** A span taken along in a lone miss's GET ('fetched'), and later read ('read'). */
  nextSpan?(event: 'fetched' | 'read'): void;
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
  /** Verifies and inflates fetched spans; on this thread unless worker threads are given. */
  decoder?: SpanDecoder;
  /** Learns the link's body rate and miss time from this layer's demand GETs (shared by all layers). */
  link?: LinkCostModel;
  /**
   * config blob.fetch_next_span: a lone miss takes the span after it along in its GET when the
   * link estimate says the extra bytes cost less than the miss they are likely to save.
   */
  nextSpan?: boolean;
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
/** Next spans remembered until read; older ones count as never read. */
const NEXT_SPANS = 256;

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
  /** Spans taken along after a lone miss and not read yet, oldest first. */
  private readonly nextUnread = new Set<number>();
  private nextFetched = 0;
  private nextRead = 0;

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

  /** Uncompressed layer bytes [offset, offset + length), shorter at the end of the layer, in a new buffer. */
  async read(offset: number, length: number): Promise<Buffer> {
    // A bad range gets readInto's error, not an allocation error.
    const n = Math.min(offset + length, this.size) - offset;
    const out = Buffer.allocUnsafe(Number.isSafeInteger(n) && n > 0 ? n : 0);
    return out.subarray(0, await this.readInto(offset, length, out, 0));
  }

  /**
   * Copies uncompressed layer bytes [offset, offset + length) into `dest` at `at` (FUSE's own
   * reply buffer), shorter at the end of the layer; resolves to the bytes copied. Spans on disk
   * are read straight into `dest`, so a warm read allocates nothing span-sized.
   */
  async readInto(offset: number, length: number, dest: Uint8Array, at: number): Promise<number> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw invalidArgument(`layer ${this.layerDigest}: bad read range ${offset}+${length}`);
    }
    this.opts.onDemandRead?.();
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return 0;
    if (dest.length - at < end - offset) throw invalidArgument(`layer ${this.layerDigest}: ${end - offset} bytes do not fit the buffer`);
    const ranges = this.spans.ranges;
    const first = spanIdForOffset(ranges, offset);
    const last = spanIdForOffset(ranges, end - 1);
    // A second read into a span (a file streamed by kernel readahead, or neighbours read
    // together) loads it whole into memory; only a first, lone read preads just its range.
    const streaming = this.recent.has(first);
    const sequential = this.noteRead(offset, end, first, last);
    const whole = streaming || sequential;
    // The serve calls claim their spans before their first await, so readahead queues behind them.
    const served = first === last
      ? this.serveOne(first, offset, end, dest, at, whole)
      : this.serveMany(first, last, offset, end, dest, at, whole);
    if (sequential) this.readAhead(last);
    await served;
    return end - offset;
  }

  /** Resolves once every fetched span handed to readers so far is on disk too (or failed to be written). */
  async diskWritesDone(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes.values());
  }

  /**
   * A read inside one span: memory, else (unless `whole`) a pread of the verified disk file,
   * else a whole-span load from disk or registry.
   */
  private async serveOne(id: number, offset: number, end: number, dest: Uint8Array, at: number, whole: boolean): Promise<void> {
    const start = this.spans.ranges[id].uncompressedStart;
    const from = offset - start;
    const to = end - start;
    const mem = this.opts.cache.getMemory(this.layerDigest, id);
    if (mem) return void mem.copy(dest, at, from, to);
    // Checked before any await: a span that must be loaded is claimed ahead of the readahead.
    if (!whole && this.onDiskNow(id) && await this.opts.cache.readInto(this.layerDigest, id, this.uncompressedSpanSize(id), from, to, dest, at)) return;
    (await this.load(id, this.lastOfMiss(id), 'demand')[0]).copy(dest, at, from, to);
  }

  /**
   * A read across span boundaries: each local span is served like a lone one; the spans to
   * load are claimed in runs of neighbours, so adjacent missing spans share one GET.
   */
  private async serveMany(first: number, last: number, offset: number, end: number, dest: Uint8Array, at: number, whole: boolean): Promise<void> {
    const ranges = this.spans.ranges;
    const parts: Promise<void>[] = [];
    let run: number[] = [];
    const loadRun = (): void => {
      if (run.length === 0) return;
      const base = run[0];
      this.load(base, base + run.length - 1, 'demand').forEach((loaded, i) => {
        const r = ranges[base + i];
        const from = Math.max(offset, r.uncompressedStart);
        const to = Math.min(end, r.uncompressedEnd);
        parts.push(loaded.then((span) => void span.copy(dest, at + from - offset, from - r.uncompressedStart, to - r.uncompressedStart)));
      });
      run = [];
    };
    for (let id = first; id <= last; id++) {
      if (!this.opts.cache.hasInMemory(this.layerDigest, id) && (whole || !this.onDiskNow(id))) {
        run.push(id);
        continue;
      }
      loadRun();
      const from = Math.max(offset, ranges[id].uncompressedStart);
      parts.push(this.serveOne(id, from, Math.min(end, ranges[id].uncompressedEnd), dest, at + from - offset, whole));
    }
    loadRun();
    await Promise.all(parts);
  }

  /**
   * The last span of a lone miss's GET: `id`, or the one after it when that is cheap enough.
   * Spans next to a read one are often read soon (after 55% of the misses of `import torch`,
   * the next span missed later), and a GET has a fixed cost (docker-registry: ~7 ms of CPU
   * whatever its size). The chance is this layer's own record of next spans read (1/2 at first).
   */
  private lastOfMiss(id: number): number {
    const next = id + 1;
    const link = this.opts.link;
    // A span already loading or on disk is no miss: its reader joins that GET or reads the file.
    if (!this.opts.nextSpan || !link || next >= this.spanCount || this.inflight.has(id) || this.isLocal(id) || this.inflight.has(next)) return id;
    if (this.opts.cache.hasInMemory(this.layerDigest, next) || this.isLocal(next)) return id;
    if (!link.worthFetching(this.compressedSize(next), (this.nextRead + 1) / (this.nextFetched + 2))) return id;
    if (this.nextUnread.size >= NEXT_SPANS) this.nextUnread.delete(this.nextUnread.values().next().value as number);
    this.nextUnread.add(next);
    this.nextFetched++;
    this.metrics.nextSpan?.('fetched');
    return next;
  }

  /** A span was read: if it came along with a miss before, that one paid off. */
  private noteNextRead(id: number): void {
    if (!this.nextUnread.delete(id)) return;
    this.nextRead++;
    this.metrics.nextSpan?.('read');
  }

  /** The span's verified file can answer reads now (and no load of it is running). */
  private onDiskNow(id: number): boolean {
    return !this.inflight.has(id) && this.opts.cache.hasVerified(this.layerDigest, id, this.uncompressedSpanSize(id));
  }

  /**
   * Remembers what a read touched; true when earlier reads read most of the two spans before
   * `last`: a stream through the layer (tar, cp, cat of a big file). Two, so a small file that
   * crosses one span boundary fetches only its own spans; "most of", so page faults scattered
   * over a big mmap'd library (a few windows per span) fetch only the spans they touch.
   */
  private noteRead(offset: number, end: number, first: number, last: number): boolean {
    const sequential = this.streamedUpTo(last);
    const ranges = this.spans.ranges;
    for (let id = first; id <= last; id++) {
      const r = ranges[id];
      const bytes = Math.min(end, r.uncompressedEnd) - Math.max(offset, r.uncompressedStart);
      this.noteNextRead(id);
      const before = this.recent.get(id);
      if (before === undefined && this.recent.size >= RECENT_SPANS) this.recent.delete(this.recent.keys().next().value as number);
      this.recent.set(id, (before ?? 0) + bytes);
    }
    return sequential;
  }

  /** The two spans before `id` were read through: a stream reaches `id`. */
  private streamedUpTo(id: number): boolean {
    return this.readThrough(id - 1) && this.readThrough(id - 2);
  }

  private readThrough(id: number): boolean {
    if (id < 0) return false;
    const bytes = (this.recent.get(id) ?? 0) + (this.servedElsewhere?.(id) ?? 0);
    return bytes >= STREAMED_FRACTION * this.uncompressedSpanSize(id);
  }

  /**
   * Reads answered without this reader (in C from the span files, fs/span-table.ts), per span:
   * they count toward spotting a stream through the layer.
   */
  servedElsewhere?: (id: number) => number;

  /**
   * The first read of span `id` answered elsewhere: a demand read for the background fetcher,
   * and, when the two spans before it were read through, readahead past it.
   */
  noteServedElsewhere(id: number): void {
    this.opts.onDemandRead?.();
    this.noteNextRead(id);
    if (this.streamedUpTo(id)) this.readAhead(id);
  }

  private uncompressedSpanSize(id: number): number {
    const r = this.spans.ranges[id];
    return r.uncompressedEnd - r.uncompressedStart;
  }

  /**
   * Starts loading the spans after `last` that are neither in memory nor in flight (from disk or
   * registry), once half the window or more is missing: adjacent missing spans share one GET,
   * and a registry spends milliseconds of CPU per request (docker-registry: ~7 ms), so moving
   * the window one span at a time cost a cold `tar` more than the bytes did.
   */
  private readAhead(last: number): void {
    const n = this.opts.readaheadSpans ?? DEFAULT_READAHEAD;
    const stop = Math.min(last + n, this.spanCount - 1);
    const missing = (id: number): boolean => !this.inflight.has(id) && !this.opts.cache.hasInMemory(this.layerDigest, id);
    let count = 0;
    for (let id = last + 1; id <= stop; id++) if (missing(id)) count++;
    if (count === 0 || (count < Math.ceil(n / 2) && stop < this.spanCount - 1)) return;
    let from = -1;
    for (let id = last + 1; id <= stop + 1; id++) {
      const wanted = id <= stop && missing(id);
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
    // Fetched into a recycled buffer: fresh ones were most of the main thread's garbage.
    const buffers = this.opts.cache.buffers;
    const arrivals = new ArrivingRun(this.opts.decoder, this.spans, run.map((d) => d.id));
    const link = priority === 'demand' ? this.opts.link : undefined;
    let bodyMs = 0;
    const alloc = link ? timedBody(arrivals.alloc(buffers), (t) => {
      bodyMs = t.ms;
      link.noteBody(t);
    }) : arrivals.alloc(buffers);
    const bytes = await this.opts.source.fetchCompressed(base, end, signal, alloc).catch((err: unknown) => {
      arrivals.cancel();
      throw err;
    });
    const arrived = performance.now();
    this.metrics.fetchDuration?.(priority, (arrived - t0) / 1000);
    if (bytes.length !== end - base) {
      arrivals.cancel();
      buffers.retire(bytes);
      throw unavailable(`source returned ${bytes.length} bytes for [${base}, ${end})`);
    }
    const begun = arrivals.complete(bytes);
    const decodes = run.map((d, i) => {
      const r = ranges[d.id];
      return this.decoded(d.id, bytes.subarray(r.compressedStart - base, r.compressedEnd - base), priority, signal, begun[i]);
    });
    // Once every decode has settled, nothing reads the compressed bytes any more.
    void Promise.allSettled(decodes).then(() => buffers.retire(bytes));
    if (link) void decodes[0].then(() => link.noteMiss(performance.now() - t0, bodyMs), () => undefined);
    await Promise.all(run.map((d, i) => this.keep(d, decodes[i], priority, arrived)));
  }

  /** Hands a decoded span to its readers and the cache. */
  private async keep(d: Deferred, decoded: Promise<{ data: Buffer; sha256?: string }>, priority: FetchPriority, arrived: number): Promise<void> {
    const r = this.spans.ranges[d.id];
    try {
      const { data, sha256 } = await decoded;
      this.metrics.decodeWait?.(priority, (performance.now() - arrived) / 1000);
      this.metrics.spanFetched?.(priority, r.compressedEnd - r.compressedStart);
      // put() stores in memory before its first await; readers need not wait for the disk.
      const stored = this.opts.cache.put(this.layerDigest, d.id, data, sha256);
      this.writes.set(d.id, stored);
      this.settle(d, data);
      await stored;
      if (this.writes.get(d.id) === stored) this.writes.delete(d.id);
    } catch (err) {
      this.fail(d, priority, err);
    }
  }

  /** The span's uncompressed bytes once its compressed bytes match the zTOC digest; a bad span is fetched again up to the configured retries. */
  private async decoded(id: number, compressed: Buffer, priority: FetchPriority, signal: AbortSignal, begun?: Promise<DecodedSpan>): Promise<{ data: Buffer; sha256?: string }> {
    const r = this.spans.ranges[id];
    const retries = this.opts.verificationRetries ?? 0;
    const codec = spanCodec(this.spans, id);
    const want = this.spans.spanDigests[id];
    const decoder = this.opts.decoder ?? inThreadDecoder;
    for (let attempt = 0; ; attempt++) {
      const out = await (attempt === 0 && begun ? begun : decoder.decode(codec, want, compressed));
      if ('data' in out) return out;
      const mismatch = new DigestMismatch(`span ${id} digest mismatch: expected ${want}, got ${out.mismatch}`);
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
