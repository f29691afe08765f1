import t from 'tap';
import { DaemonMetrics, errnoName, SPAN_FETCH_BUCKETS } from '../../daemon/metrics.js';
import type { SpanCacheMetrics } from '../../fs/span-cache.js';
import { LinkEstimates } from '../../fs/link-estimate.js';
import type { SpanReaderMetrics } from '../../fs/span-reader.js';
import type { BackgroundFetcherMetrics, LayerProgress } from '../../fs/background-fetcher.js';

const LAYER_A = `sha256:${'a'.repeat(64)}`;
const LAYER_B = `sha256:${'b'.repeat(64)}`;

/** `name{k="v",...}` -> value, labels sorted, from Prometheus text exposition. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort() : [];
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1], Number(m[3].replace(/Inf$/, 'Infinity')));
  }
  return out;
}

async function scrape(m: DaemonMetrics): Promise<Map<string, number>> {
  return parseExposition((await m.exposition()).body);
}

function newMetrics(): DaemonMetrics {
  return new DaemonMetrics({ defaultMetrics: false });
}

t.test('content type is the Prometheus text format', async (t) => {
  t.equal((await newMetrics().exposition()).contentType, 'text/plain; version=0.0.4; charset=utf-8');
});

t.test('bounded series start at zero', async (t) => {
  const s = await scrape(newMetrics());
  for (const outcome of ['lazy', 'local', 'containerd', 'error']) t.equal(s.get(`soci_layer_mounts_total{outcome="${outcome}"}`), 0, outcome);
  t.equal(s.get('soci_span_fetches_total{priority="background",result="digest_mismatch"}'), 0);
  t.equal(s.get('soci_span_cache_misses_total'), 0);
  t.equal(s.get('soci_lazy_layers_mounted'), 0);
  t.equal(s.get('soci_span_cache_disk_bytes'), 0);
  t.notOk([...s.keys()].some((k) => k.startsWith('soci_process_')), 'no default metrics when disabled');
});

t.test('mounts by outcome and lazy layers mounted', async (t) => {
  const m = newMetrics();
  m.layerMounted('lazy');
  m.layerMounted('lazy');
  m.layerMounted('local');
  m.layerMounted('containerd');
  m.layerMounted('containerd');
  m.layerMounted('containerd');
  m.layerMounted('error');
  m.lazyLayerUnmounted();
  const s = await scrape(m);
  t.equal(s.get('soci_layer_mounts_total{outcome="lazy"}'), 2);
  t.equal(s.get('soci_layer_mounts_total{outcome="local"}'), 1);
  t.equal(s.get('soci_layer_mounts_total{outcome="containerd"}'), 3);
  t.equal(s.get('soci_layer_mounts_total{outcome="error"}'), 1);
  t.equal(s.get('soci_lazy_layers_mounted'), 1);
});

t.test('span reader hooks: fetches, bytes, requests, duration histogram', async (t) => {
  const m = newMetrics();
  const hooks = m.spanReaderHooks();
  const plain: SpanReaderMetrics = hooks;
  plain.request?.('demand', 3, 3000);
  plain.request?.('background', 1, 500);
  plain.spanFetched?.('demand', 1000);
  plain.spanFetched?.('demand', 1000);
  plain.spanFetched?.('background', 500);
  plain.fetchFailed?.('demand', 'error');
  hooks.fetchFailed('background', 'digest_mismatch');
  hooks.fetchDuration('demand', 0.004);
  hooks.fetchDuration('demand', 2);
  hooks.fetchDuration('background', 40);
  hooks.decodeWait('demand', 0.003);
  const s = await scrape(m);
  t.equal(s.get('soci_span_fetches_total{priority="demand",result="ok"}'), 2);
  t.equal(s.get('soci_span_fetches_total{priority="background",result="ok"}'), 1);
  t.equal(s.get('soci_span_fetches_total{priority="demand",result="error"}'), 1);
  t.equal(s.get('soci_span_fetches_total{priority="background",result="digest_mismatch"}'), 1);
  t.equal(s.get('soci_span_fetches_total{priority="background",result="error"}'), 0);
  t.equal(s.get('soci_span_fetch_bytes_total{priority="demand"}'), 3000);
  t.equal(s.get('soci_span_fetch_bytes_total{priority="background"}'), 500);
  t.equal(s.get('soci_span_fetch_requests_total{priority="demand"}'), 1);
  t.equal(s.get('soci_span_fetch_duration_seconds_count{priority="demand"}'), 2);
  t.equal(s.get('soci_span_fetch_duration_seconds_sum{priority="demand"}'), 2.004);
  t.equal(s.get('soci_span_fetch_duration_seconds_bucket{le="0.001",priority="demand"}'), 0);
  t.equal(s.get('soci_span_fetch_duration_seconds_bucket{le="0.005",priority="demand"}'), 1);
  t.equal(s.get('soci_span_fetch_duration_seconds_bucket{le="2.5",priority="demand"}'), 2);
  t.equal(s.get('soci_span_fetch_duration_seconds_bucket{le="30",priority="background"}'), 0, '40 s is above the last bucket');
  t.equal(s.get('soci_span_fetch_duration_seconds_bucket{le="+Inf",priority="background"}'), 1);
  t.equal(SPAN_FETCH_BUCKETS[0], 0.001);
  t.equal(SPAN_FETCH_BUCKETS.at(-1), 30);
  t.equal(s.get('soci_span_decode_wait_seconds_count{priority="demand"}'), 1);
  t.equal(s.get('soci_span_decode_wait_seconds_bucket{le="0.002",priority="demand"}'), 0);
  t.equal(s.get('soci_span_decode_wait_seconds_bucket{le="0.004",priority="demand"}'), 1);
});

t.test('span cache hooks and size gauges', async (t) => {
  const m = newMetrics();
  const hooks: SpanCacheMetrics = m.spanCacheHooks();
  hooks.hit?.('memory');
  hooks.hit?.('memory');
  hooks.hit?.('disk');
  hooks.miss?.();
  hooks.miss?.();
  hooks.miss?.();
  hooks.evict?.('disk', 4096);
  hooks.evict?.('disk', 100);
  hooks.evict?.('memory', 7);
  hooks.drop?.('digest');
  const cache = { diskBytes: 12345, diskSpans: 3, memoryBytes: 678 };
  m.observeSpanCache(cache);
  let s = await scrape(m);
  t.equal(s.get('soci_span_cache_hits_total{tier="memory"}'), 2);
  t.equal(s.get('soci_span_cache_hits_total{tier="disk"}'), 1);
  t.equal(s.get('soci_span_cache_misses_total'), 3);
  t.equal(s.get('soci_span_cache_evictions_total{tier="disk"}'), 2);
  t.equal(s.get('soci_span_cache_evictions_total{tier="memory"}'), 1);
  t.equal(s.get('soci_span_cache_evicted_bytes_total{tier="disk"}'), 4196);
  t.equal(s.get('soci_span_cache_evicted_bytes_total{tier="memory"}'), 7);
  t.equal(s.get('soci_span_cache_dropped_total{reason="digest"}'), 1);
  t.equal(s.get('soci_span_cache_dropped_total{reason="size"}'), 0);
  t.equal(s.get('soci_span_cache_disk_bytes'), 12345);
  t.equal(s.get('soci_span_cache_disk_spans'), 3);
  t.equal(s.get('soci_span_cache_memory_bytes'), 678);
  cache.diskBytes = 99;
  s = await scrape(m);
  t.equal(s.get('soci_span_cache_disk_bytes'), 99, 'read at scrape time');
});

t.test('next spans counted; link estimates by registry, once measured', async (t) => {
  const m = newMetrics();
  const hooks = m.spanReaderHooks();
  hooks.nextSpan('fetched');
  hooks.nextSpan('fetched');
  hooks.nextSpan('read');
  const links = new LinkEstimates();
  m.observeLinks(links);
  links.for('mirror.local:5000').noteBody({ bytes: 2e6, ms: 10, tailBytes: 1e6, tailMs: 8 });
  links.for('mirror.local:5000').noteMiss(30, 10);
  links.for('registry.example').noteBody({ bytes: 10, ms: 0, tailBytes: 0, tailMs: 0 });
  links.for('docker.io');
  const s = await scrape(m);
  t.equal(s.get('soci_next_spans_fetched_total'), 2);
  t.equal(s.get('soci_next_spans_read_total'), 1);
  t.equal(s.get('soci_link_body_rate_bytes_per_second{registry="mirror.local:5000"}'), 1.25e8);
  t.equal(s.get('soci_demand_miss_fixed_seconds{registry="mirror.local:5000"}'), 0.02);
  t.equal(s.get('soci_link_body_rate_bytes_per_second{registry="registry.example"}'), Infinity, 'bodies that came whole');
  t.notOk(s.has('soci_demand_miss_fixed_seconds{registry="registry.example"}'), 'no miss measured there');
  t.notOk(s.has('soci_link_body_rate_bytes_per_second{registry="docker.io"}'), 'nothing measured there');
  t.equal(links.for('mirror.local:5000'), links.for('mirror.local:5000'), 'one estimate per registry');
  t.not(links.for('mirror.local:5000'), links.for('registry.example'));
});

function progress(layer: string, spansDone: number, bytesDone: number): LayerProgress {
  return { layer, spansDone, spansTotal: 10, bytesDone, bytesTotal: 5000, bytesFetched: bytesDone, failures: 0, complete: spansDone === 10 };
}

t.test('background progress per layer; series removed with the layer', async (t) => {
  const m = newMetrics();
  const hooks: BackgroundFetcherMetrics = m.backgroundHooks();
  hooks.progress?.(progress(LAYER_A, 4, 2000));
  hooks.progress?.(progress(LAYER_A, 7, 3500));
  hooks.progress?.(progress(LAYER_B, 10, 5000));
  let s = await scrape(m);
  t.equal(s.get(`soci_background_fetch_spans_done{layer="${LAYER_A}"}`), 7);
  t.equal(s.get(`soci_background_fetch_spans_total{layer="${LAYER_A}"}`), 10);
  t.equal(s.get(`soci_background_fetch_bytes_done{layer="${LAYER_A}"}`), 3500);
  t.equal(s.get(`soci_background_fetch_spans_done{layer="${LAYER_B}"}`), 10);
  m.backgroundLayerRemoved(LAYER_A);
  s = await scrape(m);
  t.notOk([...s.keys()].some((k) => k.includes(LAYER_A)), 'layer A series gone');
  t.equal(s.get(`soci_background_fetch_bytes_done{layer="${LAYER_B}"}`), 5000);
});

t.test('FUSE ops and errors by errno name', async (t) => {
  const m = newMetrics();
  m.fuseOp('read');
  m.fuseOp('read');
  m.fuseOp('lookup');
  m.fuseError('read', -5);
  m.fuseError('read', 5);
  m.fuseError('lookup', 'ENOENT');
  const s = await scrape(m);
  t.equal(s.get('soci_fuse_ops_total{op="read"}'), 2);
  t.equal(s.get('soci_fuse_ops_total{op="lookup"}'), 1);
  t.equal(s.get('soci_fuse_op_errors_total{errno="EIO",op="read"}'), 2);
  t.equal(s.get('soci_fuse_op_errors_total{errno="ENOENT",op="lookup"}'), 1);
  t.equal(errnoName(-2), 'ENOENT');
  t.equal(errnoName(99999), '99999');
});

t.test('FUSE op counts kept outside JS are added before every scrape, until the mount stops it', async (t) => {
  const m = newMetrics();
  const hooks = m.fuseOpHooks();
  let answered = 0;
  let told = 0;
  const stop = hooks.beforeRead?.(() => {
    hooks.op('getattr', answered - told);
    hooks.error('getattr', -2, answered - told > 0 ? 1 : 0);
    told = answered;
  });
  answered = 5;
  let s = await scrape(m);
  t.equal(s.get('soci_fuse_ops_total{op="getattr"}'), 5, 'counted at the scrape');
  t.equal(s.get('soci_fuse_op_errors_total{errno="ENOENT",op="getattr"}'), 1);
  answered = 7;
  s = await scrape(m);
  t.equal(s.get('soci_fuse_ops_total{op="getattr"}'), 7, 'only the new ones added');
  stop?.();
  answered = 100;
  s = await scrape(m);
  t.equal(s.get('soci_fuse_ops_total{op="getattr"}'), 7, 'not after stop');
});

t.test('gRPC requests by method and code, duration by method', async (t) => {
  const m = newMetrics();
  m.grpcRequest('Prepare', 'OK', 0.02);
  m.grpcRequest('Prepare', 'ALREADY_EXISTS', 1.5);
  m.grpcRequest('Stat', 'NOT_FOUND', 0.0001);
  const s = await scrape(m);
  t.equal(s.get('soci_grpc_requests_total{code="OK",method="Prepare"}'), 1);
  t.equal(s.get('soci_grpc_requests_total{code="ALREADY_EXISTS",method="Prepare"}'), 1);
  t.equal(s.get('soci_grpc_requests_total{code="NOT_FOUND",method="Stat"}'), 1);
  t.equal(s.get('soci_grpc_request_duration_seconds_count{method="Prepare"}'), 2);
  t.equal(s.get('soci_grpc_request_duration_seconds_bucket{le="0.05",method="Prepare"}'), 1);
  t.equal(s.get('soci_grpc_request_duration_seconds_bucket{le="0.0005",method="Stat"}'), 1);
});

t.test('default process metrics with the soci_ prefix, on this registry only', async (t) => {
  const a = new DaemonMetrics();
  const b = newMetrics();
  a.layerMounted('lazy');
  const s = await scrape(a);
  t.ok(s.has('soci_process_cpu_user_seconds_total'), 'process cpu');
  t.ok(s.has('soci_nodejs_heap_size_total_bytes'), 'heap size');
  t.ok((s.get('soci_process_resident_memory_bytes') ?? 0) > 1 << 20, 'resident memory above 1 MiB');
  const sb = await scrape(b);
  t.equal(sb.get('soci_layer_mounts_total{outcome="lazy"}'), 0, 'instances do not share series');
  t.notOk(sb.has('soci_process_cpu_user_seconds_total'));
});
