/**
 * Makes mounted layers fully local: once a layer has been quiet (no demand read) for
 * background_fetch.silence_period_msec, its missing spans are fetched in order at background
 * priority, paced by fetch_period_msec and a shared bandwidth cap. A demand read restarts the
 * quiet period; the FetchLimiter keeps background fetches behind demand ones.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackgroundFetchConfig } from '../config/types.js';
import { describe } from '../errors/errors.js';
import { raceAbort } from '../fetcher/span-source.js';
import { silentLogger, type FsLogger } from './fs-logger.js';
import { TokenBucket } from './token-bucket.js';

/** What the fetcher needs of a layer; LayerSpanReader provides it. */
export interface BackgroundTarget {
  readonly layerDigest: string;
  readonly spanCount: number;
  compressedSize(id: number): number;
  isLocal(id: number): boolean;
  fetchSpan(id: number, priority: 'background'): Promise<void>;
}

export interface LayerProgress {
  layer: string;
  spansDone: number;
  spansTotal: number;
  /** Compressed bytes of the spans done (fetched by anyone or already cached). */
  bytesDone: number;
  bytesTotal: number;
  /** Compressed bytes this fetcher itself downloaded. */
  bytesFetched: number;
  failures: number;
  complete: boolean;
}

export interface BackgroundFetcherMetrics {
  progress?(p: LayerProgress): void;
}

export interface BackgroundFetcherOptions {
  config: Pick<BackgroundFetchConfig, 'disable' | 'silence_period_msec' | 'fetch_period_msec' | 'max_queue_size' | 'emit_metric_period_sec' | 'bandwidth_bytes_per_sec'>;
  logger?: FsLogger;
  metrics?: BackgroundFetcherMetrics;
  now?: () => number;
}

interface LayerState {
  target: BackgroundTarget;
  lastDemand: number;
  ac: AbortController;
  task: Promise<void>;
  done: Set<number>;
  bytesDone: number;
  bytesFetched: number;
  failures: number;
  complete: boolean;
}

/** Passes over a layer: spans that failed in one pass are tried again in the next. */
const MAX_PASSES = 3;

export class BackgroundFetcher {
  private readonly layers = new Map<string, LayerState>();
  private readonly bucket: TokenBucket;
  private readonly log: FsLogger;
  private readonly now: () => number;
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: BackgroundFetcherOptions) {
    this.now = opts.now ?? Date.now;
    this.bucket = new TokenBucket(opts.config.bandwidth_bytes_per_sec, this.now);
    this.log = opts.logger ?? silentLogger;
  }

  /** Starts the quiet period of a newly mounted layer; false when disabled, stopped, already known or the queue is full. */
  addLayer(target: BackgroundTarget): boolean {
    const cfg = this.opts.config;
    if (cfg.disable || this.stopped || this.layers.has(target.layerDigest)) return false;
    const active = [...this.layers.values()].filter((s) => !s.complete).length;
    if (active >= cfg.max_queue_size) {
      this.log.warn({ layer: target.layerDigest }, `background fetch: queue full (${cfg.max_queue_size} layers), layer ${target.layerDigest} stays lazy`);
      return false;
    }
    const s: LayerState = {
      target, lastDemand: this.now(), ac: new AbortController(), task: Promise.resolve(),
      done: new Set(), bytesDone: 0, bytesFetched: 0, failures: 0, complete: false,
    };
    this.layers.set(target.layerDigest, s);
    s.task = this.run(s).catch((err: unknown) => {
      if (!s.ac.signal.aborted) this.log.error({ layer: target.layerDigest, err: describe(err) }, `background fetch of layer ${target.layerDigest} stopped: ${describe(err)}`);
    });
    this.startTicker();
    return true;
  }

  /** A demand read on the layer: background fetching waits for a new quiet period. */
  noteDemand(layer: string): void {
    const s = this.layers.get(layer);
    if (s) s.lastDemand = this.now();
  }

  progress(layer: string): LayerProgress | undefined {
    const s = this.layers.get(layer);
    return s && this.progressOf(s);
  }

  allProgress(): LayerProgress[] {
    return [...this.layers.values()].map((s) => this.progressOf(s));
  }

  /** Cancels the layer's background fetch and waits until its task has ended. */
  async removeLayer(layer: string): Promise<void> {
    const s = this.layers.get(layer);
    if (!s) return;
    this.layers.delete(layer);
    s.ac.abort();
    await s.task;
    if (this.layers.size === 0) this.stopTicker();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTicker();
    await Promise.all([...this.layers.keys()].map((l) => this.removeLayer(l)));
  }

  private async run(s: LayerState): Promise<void> {
    const signal = s.ac.signal;
    for (let pass = 0; pass < MAX_PASSES && !s.complete; pass++) {
      for (let id = 0; id < s.target.spanCount; id++) {
        if (this.skip(s, id)) continue;
        await this.quiet(s, signal);
        if (this.skip(s, id)) continue;
        await this.fetchOne(s, id, signal);
        await sleep(this.opts.config.fetch_period_msec, undefined, { signal });
      }
      s.complete = s.done.size === s.target.spanCount;
    }
    this.report(s, s.complete ? 'done' : 'gave up');
  }

  /** Marks spans someone else made local; true when there is nothing to fetch. */
  private skip(s: LayerState, id: number): boolean {
    if (s.done.has(id)) return true;
    if (!s.target.isLocal(id)) return false;
    this.markDone(s, id);
    return true;
  }

  private markDone(s: LayerState, id: number): void {
    s.done.add(id);
    s.bytesDone += s.target.compressedSize(id);
  }

  private async quiet(s: LayerState, signal: AbortSignal): Promise<void> {
    for (;;) {
      const wait = s.lastDemand + this.opts.config.silence_period_msec - this.now();
      if (wait <= 0) return;
      await sleep(wait, undefined, { signal });
    }
  }

  private async fetchOne(s: LayerState, id: number, signal: AbortSignal): Promise<void> {
    const bytes = s.target.compressedSize(id);
    await this.bucket.take(bytes, signal);
    try {
      await raceAbort(s.target.fetchSpan(id, 'background'), signal, `background fetch of span ${id}`);
      this.markDone(s, id);
      s.bytesFetched += bytes;
    } catch (err) {
      if (signal.aborted) throw err;
      s.failures++;
      this.log.warn({ layer: s.target.layerDigest, span: id, err: describe(err) }, `background fetch: ${describe(err)}`);
    }
  }

  private progressOf(s: LayerState): LayerProgress {
    const t = s.target;
    let bytesTotal = 0;
    for (let id = 0; id < t.spanCount; id++) bytesTotal += t.compressedSize(id);
    return {
      layer: t.layerDigest, spansDone: s.done.size, spansTotal: t.spanCount, bytesDone: s.bytesDone, bytesTotal,
      bytesFetched: s.bytesFetched, failures: s.failures, complete: s.complete,
    };
  }

  private report(s: LayerState, what: string): void {
    const p = this.progressOf(s);
    this.opts.metrics?.progress?.(p);
    this.log.info({ ...p }, `background fetch ${what}: layer ${p.layer} ${p.spansDone}/${p.spansTotal} spans, ${p.bytesDone}/${p.bytesTotal} bytes`);
  }

  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      for (const s of this.layers.values()) if (!s.complete) this.report(s, 'progress');
    }, this.opts.config.emit_metric_period_sec * 1000);
    this.ticker.unref();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }
}
