/**
 * The daemon's Prometheus metrics on a registry of its own (never prom-client's global one, so
 * two daemons in one test process, or a library user, never share series). Typed methods for
 * the daemon's own events, and adapters that plug into the hook interfaces of fs/.
 */
import { constants as osConstants } from 'node:os';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheTier, DropReason, SpanCacheMetrics } from '../fs/span-cache.js';
import type { SpanReaderMetrics } from '../fs/span-reader.js';
import type { LinkEstimate, LinkEstimates } from '../fs/link-estimate.js';
import type { FuseOpMetrics } from '../fs/fuse-ops.js';
import type { FetchPriority } from '../fs/fetch-limiter.js';
import type { BackgroundFetcherMetrics, LayerProgress } from '../fs/background-fetcher.js';

export const METRICS_PREFIX = 'soci_';

/** How a layer became available: our FUSE fs, unpacked by us, or left to containerd. */
export type MountOutcome = 'lazy' | 'local' | 'containerd' | 'error';
export type SpanFetchResult = 'ok' | 'error' | 'digest_mismatch';

const MOUNT_OUTCOMES: readonly MountOutcome[] = ['lazy', 'local', 'containerd', 'error'];
const PRIORITIES: readonly FetchPriority[] = ['demand', 'background'];
const FETCH_RESULTS: readonly SpanFetchResult[] = ['ok', 'error', 'digest_mismatch'];
const TIERS: readonly CacheTier[] = ['memory', 'disk'];
const DROP_REASONS: readonly DropReason[] = ['size', 'digest', 'read-error'];

/** One span GET ranges from a page-cache hit on a local registry (~1 ms) to a slow WAN link (30 s timeout). */
export const SPAN_FETCH_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
export const SPAN_DECODE_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5];
/** Snapshot calls range from a metadata lookup (sub-ms) to a remote Prepare that mounts a layer (seconds). */
export const GRPC_BUCKETS: readonly number[] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

/** What the cache size gauges read at scrape time; SpanCache has these getters. */
export interface SpanCacheSizes {
  readonly diskBytes: number;
  readonly diskSpans: number;
  readonly memoryBytes: number;
}

/** Every hook of SpanReaderMetrics, required: the daemon counts them all. */
export type SpanReaderHooks = Required<SpanReaderMetrics>;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** EIO for 5, -5 or 'EIO': FUSE code hands out negative numbers, logs use names. */
export function errnoName(errno: number | string): string {
  if (typeof errno === 'string') return errno;
  return ERRNO_NAMES.get(Math.abs(errno)) ?? String(Math.abs(errno));
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private cacheSizes: SpanCacheSizes | undefined;
  private links: LinkEstimates | undefined;

  private readonly mounts = this.counter('layer_mounts_total', 'Layers prepared, by how they were made available.', ['outcome']);
  private readonly lazyMounted = this.gauge('lazy_layers_mounted', 'Lazily loaded (FUSE) layers mounted now.', []);
  private readonly remounts = this.gauge('restart_remounts', 'Lazy layers found at the last start, by what happened: mounted, mounted with an unreachable source (allow_invalid_mounts_on_restart), or failed.', ['result']);
  private readonly fetches = this.counter('span_fetches_total', 'Spans fetched from the registry, by priority and result.', ['priority', 'result']);
  private readonly fetchBytes = this.counter('span_fetch_bytes_total', 'Compressed bytes requested from the registry for spans (refetches included).', ['priority']);
  private readonly fetchRequests = this.counter('span_fetch_requests_total', 'Range GETs issued for spans (one GET may carry several adjacent spans).', ['priority']);
  private readonly fetchSeconds = new Histogram({
    name: `${METRICS_PREFIX}span_fetch_duration_seconds`, help: 'Time of one span Range GET.',
    labelNames: ['priority'], buckets: [...SPAN_FETCH_BUCKETS], registers: [this.registry],
  });
  private readonly decodeSeconds = new Histogram({
    name: `${METRICS_PREFIX}span_decode_wait_seconds`, help: 'Time from the last byte of a span Range GET until one of its spans is verified and inflated.',
    labelNames: ['priority'], buckets: [...SPAN_DECODE_BUCKETS], registers: [this.registry],
  });
  private readonly nextSpansFetched = this.counter('next_spans_fetched_total', 'Spans taken along in the GET of a lone demand miss (blob.fetch_next_span).', []);
  private readonly nextSpansRead = this.counter('next_spans_read_total', 'Spans taken along with a miss that were read later.', []);
  private readonly cacheHits = this.counter('span_cache_hits_total', 'Span cache hits, by tier.', ['tier']);
  private readonly cacheMisses = this.counter('span_cache_misses_total', 'Span cache misses (the span had to be fetched).', []);
  private readonly evictions = this.counter('span_cache_evictions_total', 'Spans evicted from the span cache, by tier.', ['tier']);
  private readonly evictedBytes = this.counter('span_cache_evicted_bytes_total', 'Uncompressed bytes evicted from the span cache, by tier.', ['tier']);
  private readonly dropped = this.counter('span_cache_dropped_total', 'Cached span files that failed their check and were deleted, by reason.', ['reason']);
  private readonly bgSpansDone = this.gauge('background_fetch_spans_done', 'Spans of a layer that are local.', ['layer']);
  private readonly bgSpansTotal = this.gauge('background_fetch_spans_total', 'Spans of a layer.', ['layer']);
  private readonly bgBytesDone = this.gauge('background_fetch_bytes_done', 'Compressed bytes of a layer that are local.', ['layer']);
  /** Run before a scrape reads the FUSE op counters (mounts add the getattrs their addon answered). */
  private readonly fuseFlushes = new Set<() => void>();
  private readonly fuseOps = this.counter('fuse_ops_total', 'FUSE operations served, by operation.', ['op'], () => this.flushFuseOps());
  private readonly fuseErrors = this.counter('fuse_op_errors_total', 'FUSE operations answered with an error, by operation and errno.', ['op', 'errno'], () => this.flushFuseOps());
  private readonly grpcRequests = this.counter('grpc_requests_total', 'Snapshots API calls, by method and gRPC status code.', ['method', 'code']);
  private readonly grpcSeconds = new Histogram({
    name: `${METRICS_PREFIX}grpc_request_duration_seconds`, help: 'Time to answer one Snapshots API call.',
    labelNames: ['method'], buckets: [...GRPC_BUCKETS], registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const sizes = (): SpanCacheSizes | undefined => this.cacheSizes;
    this.sizeGauge('span_cache_disk_bytes', 'Uncompressed bytes of spans in the disk cache.', () => sizes()?.diskBytes);
    this.sizeGauge('span_cache_disk_spans', 'Spans in the disk cache.', () => sizes()?.diskSpans);
    this.sizeGauge('span_cache_memory_bytes', 'Uncompressed bytes of spans in the memory cache.', () => sizes()?.memoryBytes);
    this.linkGauge('link_body_rate_bytes_per_second', 'Moving average of the rate at which span GET bodies arrive after their first piece (+Inf: they came whole), by registry.', (l) => l.bodyRate);
    this.linkGauge('demand_miss_fixed_seconds', 'Moving average of the part of a demand span miss that does not depend on its size (its GET to its first span served, less its body\'s arrival), by registry.', (l) => l.missFixedSeconds);
    this.zeroSeries();
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
  }

  /** The exposition text and the content type to serve it with. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** The counts of the start-up re-mount; an unreachable layer stays visible here until the next start. */
  restartRemounts(r: { mounted: number; unreachable: number; failed: number }): void {
    this.remounts.set({ result: 'mounted' }, r.mounted - r.unreachable);
    this.remounts.set({ result: 'unreachable' }, r.unreachable);
    this.remounts.set({ result: 'failed' }, r.failed);
  }

  layerMounted(outcome: MountOutcome): void {
    this.mounts.inc({ outcome });
    if (outcome === 'lazy') this.lazyMounted.inc();
  }

  lazyLayerUnmounted(): void {
    this.lazyMounted.dec();
  }

  spanFetch(priority: FetchPriority, result: SpanFetchResult): void {
    this.fetches.inc({ priority, result });
  }

  spanRequest(priority: FetchPriority, compressedBytes: number): void {
    this.fetchRequests.inc({ priority });
    this.fetchBytes.inc({ priority }, compressedBytes);
  }

  spanFetchDuration(priority: FetchPriority, seconds: number): void {
    this.fetchSeconds.observe({ priority }, seconds);
  }

  /** The cache whose sizes the gauges report at each scrape. */
  observeSpanCache(cache: SpanCacheSizes): void {
    this.cacheSizes = cache;
  }

  /** The link estimates the next-span policy uses (fs/link-estimate.ts), read at scrape time. */
  observeLinks(links: LinkEstimates): void {
    this.links = links;
  }

  backgroundProgress(p: LayerProgress): void {
    this.bgSpansDone.set({ layer: p.layer }, p.spansDone);
    this.bgSpansTotal.set({ layer: p.layer }, p.spansTotal);
    this.bgBytesDone.set({ layer: p.layer }, p.bytesDone);
  }

  /** A layer left the background fetcher: its series go too, so the label set stays bounded. */
  backgroundLayerRemoved(layer: string): void {
    for (const g of [this.bgSpansDone, this.bgSpansTotal, this.bgBytesDone]) g.remove({ layer });
  }

  fuseOp(op: string, count = 1): void {
    this.fuseOps.inc({ op }, count);
  }

  fuseError(op: string, errno: number | string, count = 1): void {
    this.fuseErrors.inc({ op, errno: errnoName(errno) }, count);
  }

  grpcRequest(method: string, code: string, seconds: number): void {
    this.grpcRequests.inc({ method, code });
    this.grpcSeconds.observe({ method }, seconds);
  }

  fuseOpHooks(): FuseOpMetrics {
    return {
      op: (name, count) => this.fuseOp(name, count),
      error: (name, errno, count) => this.fuseError(name, errno, count),
      beforeRead: (flush) => {
        this.fuseFlushes.add(flush);
        return () => void this.fuseFlushes.delete(flush);
      },
    };
  }

  spanCacheHooks(): Required<SpanCacheMetrics> {
    return {
      hit: (tier) => this.cacheHits.inc({ tier }),
      miss: () => this.cacheMisses.inc(),
      evict: (tier, bytes) => {
        this.evictions.inc({ tier });
        this.evictedBytes.inc({ tier }, bytes);
      },
      drop: (reason) => this.dropped.inc({ reason }),
    };
  }

  spanReaderHooks(): Required<SpanReaderHooks> {
    return {
      request: (priority, _spans, compressedBytes) => this.spanRequest(priority, compressedBytes),
      spanFetched: (priority) => this.spanFetch(priority, 'ok'),
      fetchFailed: (priority, result) => this.spanFetch(priority, result),
      fetchDuration: (priority, seconds) => this.spanFetchDuration(priority, seconds),
      decodeWait: (priority, seconds) => this.decodeSeconds.observe({ priority }, seconds),
      nextSpan: (event) => (event === 'fetched' ? this.nextSpansFetched : this.nextSpansRead).inc(),
    };
  }

  backgroundHooks(): Required<BackgroundFetcherMetrics> {
    return { progress: (p) => this.backgroundProgress(p) };
  }

  /** Series of bounded label sets start at 0, so rate() and absent() work before the first event. */
  private zeroSeries(): void {
    for (const outcome of MOUNT_OUTCOMES) this.mounts.inc({ outcome }, 0);
    for (const priority of PRIORITIES) {
      this.fetchBytes.inc({ priority }, 0);
      this.fetchRequests.inc({ priority }, 0);
      for (const result of FETCH_RESULTS) this.fetches.inc({ priority, result }, 0);
    }
    for (const tier of TIERS) {
      this.cacheHits.inc({ tier }, 0);
      this.evictions.inc({ tier }, 0);
      this.evictedBytes.inc({ tier }, 0);
    }
    for (const reason of DROP_REASONS) this.dropped.inc({ reason }, 0);
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[], collect?: () => void): Counter<L> {
    return new Counter({ name: `${METRICS_PREFIX}${name}`, help, labelNames, registers: [this.registry], collect });
  }

  private flushFuseOps(): void {
    for (const flush of this.fuseFlushes) flush();
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name: `${METRICS_PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }

  /** A gauge per registry with a measured link; registries are few (those of the images pulled). */
  private linkGauge(name: string, help: string, read: (link: LinkEstimate) => number | undefined): void {
    const links = (): LinkEstimates | undefined => this.links;
    new Gauge({
      name: `${METRICS_PREFIX}${name}`, help, labelNames: ['registry'], registers: [this.registry],
      collect() {
        for (const [registry, link] of links()?.entries() ?? []) {
          const v = read(link);
          if (v !== undefined) this.set({ registry }, v);
        }
      },
    });
  }

  private sizeGauge(name: string, help: string, read: () => number | undefined): void {
    new Gauge({
      name: `${METRICS_PREFIX}${name}`, help, registers: [this.registry],
      collect() {
        this.set(read() ?? 0);
      },
    });
  }
}
