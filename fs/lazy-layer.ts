import type { Config } from '../config/types.js';
import { invalidArgument } from '../errors/errors.js';
import type { Reference } from '../fetcher/registry/reference.js';
import { registrySpanSource, type RangeFetcher } from '../fetcher/span-source.js';
import type { Descriptor } from '../ztoc/oci.js';
import type { BackgroundFetcher } from './background-fetcher.js';
import type { FetchLimiter } from './fetch-limiter.js';
import type { FsLogger } from './fs-logger.js';
import type { LayerModel } from './layer-model.js';
import type { LinkEstimates } from './link-estimate.js';
import type { FuseOpMetrics } from './fuse-ops.js';
import { LayerFs } from './layer-fs.js';
import type { SpanCache } from './span-cache.js';
import type { SpanDecoder } from './span-decoder.js';
import { LayerSpanReader, type SpanReaderMetrics } from './span-reader.js';
import { followFirstReads, SpanTable } from './span-table.js';
import type { AttachedSpanTable } from './layer-fs.js';
import type { LayerSpans } from '../ztoc/layer-spans.js';

/** What every lazily mounted layer shares: the registry, the span cache, the fetch limit and the inflate threads. */
export interface LazyLayerDeps {
  registry: RangeFetcher;
  cache: SpanCache;
  limiter: FetchLimiter;
  decoder?: SpanDecoder;
  /** The links' costs, per registry, learnt from all layers' fetches (blob.fetch_next_span uses them). */
  links?: LinkEstimates;
  background?: BackgroundFetcher;
  config: Pick<Config, 'fuse' | 'blob'>;
  logger: FsLogger;
  metrics?: SpanReaderMetrics;
  fuseMetrics?: FuseOpMetrics;
}

export interface LazyLayerSpec {
  repo: Reference;
  layer: Descriptor;
  /** From buildLayerModel (fs/layer-model.ts), for this layer. */
  model: LayerModel;
  mountpoint: string;
}

export interface LazyLayer {
  readonly layerDigest: string;
  readonly reader: LayerSpanReader;
  readonly fs: LayerFs;
  unmount(): Promise<void>;
}

/**
 * Mounts one indexed layer: the zTOC gives the file tree (served from memory) and the spans
 * (fetched from the registry on first read, verified, cached).
 */
export async function mountLazyLayer(deps: LazyLayerDeps, spec: LazyLayerSpec): Promise<LazyLayer> {
  const { spans, tree, tables } = spec.model;
  if (spec.model.layerDigest !== spec.layer.digest) throw invalidArgument(`the model given to mount layer ${spec.layer.digest} is of layer ${spec.model.layerDigest}`);
  const background = deps.background;
  const reader = new LayerSpanReader({
    layerDigest: spec.layer.digest,
    spans,
    source: registrySpanSource(deps.registry, spec.repo, spec.layer),
    cache: deps.cache,
    limiter: deps.limiter,
    logger: deps.logger,
    metrics: deps.metrics,
    fetchTimeoutMs: deps.config.blob.fetching_timeout_sec * 1000,
    verificationRetries: deps.config.blob.max_span_verification_retries,
    onDemandRead: background ? () => background.noteDemand(spec.layer.digest) : undefined,
    readaheadSpans: deps.config.blob.readahead_spans,
    decoder: deps.decoder,
    link: deps.links?.for(spec.repo.domain),
    nextSpan: deps.config.blob.fetch_next_span,
  });
  const f = deps.config.fuse;
  const fs = new LayerFs(tree, (node, offset, length, dest) => reader.readInto(node.dataOffset + offset, length, dest, 0), {
    mountpoint: spec.mountpoint,
    fsname: 'soci',
    label: spec.layer.digest,
    logger: deps.logger,
    entryTimeoutSec: f.entry_timeout,
    attrTimeoutSec: f.attr_timeout,
    negativeTimeoutSec: f.negative_timeout,
    maxRead: f.max_read,
    readAheadKb: f.readahead_kb,
    opMetrics: deps.fuseMetrics,
    spanTable: (dataOffsets) => attachSpanTable(deps.cache, reader, spans, dataOffsets),
    tables,
  });
  await fs.mount();
  background?.addLayer(reader);
  return {
    layerDigest: spec.layer.digest,
    reader,
    fs,
    unmount: async () => {
      await background?.removeLayer(spec.layer.digest);
      await fs.unmount();
    },
  };
}

/**
 * The mount's span table (reads of local spans answered in C), kept current from the cache's
 * verified files; the reader follows reads answered there to keep its readahead going.
 */
function attachSpanTable(cache: SpanCache, reader: LayerSpanReader, spans: LayerSpans, dataOffsets: number[]): AttachedSpanTable {
  const ranges = spans.ranges;
  const bounds = [...ranges.map((r) => r.uncompressedStart), ranges.at(-1)?.uncompressedEnd ?? 0];
  const layer = reader.layerDigest;
  const table = new SpanTable(bounds, dataOffsets, cache.layerDirectory(layer));
  const unwatch = cache.watchLayer(layer, {
    local: (id, file, size) => {
      const r = ranges[id];
      if (r && size === r.uncompressedEnd - r.uncompressedStart) table.setLocal(id, file);
    },
    gone: (id) => table.clearLocal(id),
  });
  reader.servedElsewhere = (id) => table.servedBytes(id);
  const unfollow = followFirstReads(table, (id) => {
    cache.touchSpan(layer, id);
    reader.noteServedElsewhere(id);
  });
  return {
    table,
    detach: () => {
      unfollow();
      unwatch();
      reader.servedElsewhere = undefined;
    },
  };
}
