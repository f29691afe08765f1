/**
 * Every configuration key of soci-snapshotter-grpc: type, default, doc. Names follow upstream
 * awslabs/soci-snapshotter where the concept is the same (origin 'upstream'); keys marked 'ours'
 * have no upstream counterpart. Defaults that depend on other keys are written as the sentinel
 * the user would write (0 or '') and resolved in config/defaults.ts.
 */
import { absolutePath, basicAuthField, emptyOrAbsolutePath, hostName, pathList } from './checks.js';
import { field, section, type ListSpec, type MapSpec, type SectionSpec } from './schema-types.js';

export type { Config, ConfigOverrides } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/soci-snapshotter-grpc/config.toml';
export const DEFAULT_ROOT_PATH = '/var/lib/soci-snapshotter-grpc';
export const DEFAULT_ADDRESS = '/run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const ours = { origin: 'ours' } as const;
const nonNegative = { min: 0 } as const;
const positive = { min: 1 } as const;

const pullModes = section({
  soci_v1: section({
    enable: field('boolean', true, 'Discover SOCI v1 indexes through the OCI referrers API (with the `sha256-<digest>` tag fallback). Upstream defaults to false; here it is on.'),
  }),
  soci_v2: section({
    enable: field('boolean', true, 'Discover SOCI v2 indexes through the annotation on the image manifest.'),
  }),
});

const snapshotter = section({
  min_layer_size: field('integer', 0, 'Layers smaller than this many bytes are fetched and unpacked whole instead of mounted lazily, even if they have a zTOC.', { ...nonNegative, unit: 'bytes' }),
  allow_invalid_mounts_on_restart: field('boolean', false, 'On start, mount a lazy snapshot whose source cannot be reached instead of failing the start; it is reported in the log and in the metric `soci_restart_remounts{result="unreachable"}`, and uncached reads fail until the source is back.'),
});

const backgroundFetch = section({
  disable: field('boolean', false, 'Do not fetch the rest of a mounted layer in the background.'),
  silence_period_msec: field('integer', 30_000, 'Quiet time after a layer is mounted before background fetching (re)starts.', nonNegative),
  fetch_period_msec: field('integer', 500, 'Pause between two background span fetches.', nonNegative),
  max_queue_size: field('integer', 100, 'Most layers queued for background fetching at once.', positive),
  emit_metric_period_sec: field('integer', 10, 'How often background-fetch progress is logged and exported as metrics.', positive),
  bandwidth_bytes_per_sec: field('integer', 0, 'Cap on background fetch bandwidth in bytes per second; 0 = unlimited.', { ...nonNegative, ...ours, unit: 'bytes' }),
});

/** Upstream reads [http] through untagged Go fields, so its documented keys are CamelCase; both spellings are accepted. */
const http = section({
  dial_timeout_msec: field('integer', 3_000, 'Time allowed to open a connection to a registry.', { ...positive, aliases: ['DialTimeoutMsec'] }),
  response_header_timeout_msec: field('integer', 3_000, 'Time allowed from sending a request to receiving the response headers.', { ...positive, aliases: ['ResponseHeaderTimeoutMsec'] }),
  request_timeout_msec: field('integer', 30_000, 'Time allowed for one whole request attempt, body included.', { ...positive, aliases: ['RequestTimeoutMsec'] }),
  max_retries: field('integer', 8, 'Retries after the first attempt on connection errors, 429 and 5xx (never on other 4xx).', { ...nonNegative, aliases: ['MaxRetries'] }),
  min_wait_msec: field('integer', 30, 'Shortest back-off between attempts.', { ...nonNegative, aliases: ['MinWaitMsec'] }),
  max_wait_msec: field('integer', 300_000, 'Longest back-off between attempts (a `Retry-After` is capped by it).', { ...nonNegative, aliases: ['MaxWaitMsec'] }),
});

const blob = section({
  valid_interval: field('integer', 60, 'Seconds a layer\'s resolved blob location (redirect target and credentials) is reused before being resolved again.', nonNegative),
  fetching_timeout_sec: field('integer', 300, 'Time allowed for fetching one span, retries included; then the read fails with EIO.', positive),
  max_retries: field('integer', 0, 'Retries of a span fetch; 0 = use `http.max_retries`.', nonNegative),
  min_wait_msec: field('integer', 0, 'Shortest back-off between span fetch attempts; 0 = use `http.min_wait_msec`.', nonNegative),
  max_wait_msec: field('integer', 0, 'Longest back-off between span fetch attempts; 0 = use `http.max_wait_msec`.', nonNegative),
  max_span_verification_retries: field('integer', 0, 'Extra fetches of a span whose bytes do not match its digest before the read fails.', nonNegative),
  max_concurrent_fetches: field('integer', 8, 'Span fetches in flight at once across all layers (on-demand and background).', { ...positive, ...ours }),
  readahead_spans: field('integer', 4, 'Spans loaded ahead of a reader that reads through a layer (it read the two spans before); 0 = none.', { ...nonNegative, max: 64, ...ours }),
  fetch_next_span: field('boolean', true, 'A lone read miss takes the next span along in its GET when the measured link makes the extra bytes cheaper than the miss they are likely to save (on a fast link, yes; on a slow one, no).', ours),
});

const fuse = section({
  attr_timeout: field('integer', 3600, 'Seconds the kernel caches file attributes. Layers are immutable, so the default is long (upstream: 1).', nonNegative),
  entry_timeout: field('integer', 3600, 'Seconds the kernel caches name lookups (upstream: 1).', nonNegative),
  negative_timeout: field('integer', 3600, 'Seconds the kernel caches failed lookups (upstream: 1).', nonNegative),
  log_fuse_operations: field('boolean', false, 'Log every FUSE operation. For debugging only: logs contain file names from images.'),
  max_read: field('integer', MiB, 'Largest read request the kernel sends, in bytes.', { min: 4 * KiB, max: 16 * MiB, ...ours, unit: 'bytes' }),
  readahead_kb: field('integer', 1024, 'Kernel readahead for the mount, in KiB; 0 = the kernel default (128). Lower fetches fewer spans for the scattered reads of a starting program, higher reads faster sequentially.', { ...nonNegative, max: 1024 * 1024, ...ours }),
  allow_other: field('boolean', true, 'Let users other than the daemon\'s read the mount (containers run as any user).', ours),
});

const cache = section({
  disk_cache_max_bytes: field('integer', 10 * GiB, 'Cap on the on-disk span cache across all layers; least recently used spans are evicted.', { ...positive, ...ours, unit: 'bytes' }),
  memory_cache_max_bytes: field('integer', 32 * MiB, 'Cap on the in-memory cache of hot spans; 0 = no memory cache. Spans on disk are read through the page cache anyway; a larger cap keeps more span buffers, each first touched when a fetched span lands in it.', { ...nonNegative, ...ours, unit: 'bytes' }),
  directory: field('string', '', 'Directory of the span cache; \'\' = `<root_path>/cache`. Span files are written with O_DIRECT (past the page cache) where its filesystem allows, else buffered.', { check: emptyOrAbsolutePath, ...ours }),
});

const contentStore = section({
  type: field('string', 'soci', 'Where indexes and zTOCs are stored. Only "soci" (the snapshotter\'s own store) is supported.', { oneOf: ['soci'] }),
});

const mirror: SectionSpec = section({
  host: field('string', '', 'Mirror host[:port], no scheme.', { required: true, check: hostName }),
  insecure: field('boolean', false, 'Talk to this mirror over plain HTTP.'),
  request_timeout_sec: field('integer', 0, 'Timeout of one request to this mirror; 0 = `http.request_timeout_msec`.', nonNegative),
});

const mirrors: ListSpec = { kind: 'list', doc: 'Mirrors tried in order before the host itself.', origin: 'upstream', item: mirror };

const resolverHosts: MapSpec = {
  kind: 'map',
  doc: 'Per-registry settings, keyed by registry host.',
  origin: 'upstream',
  keyName: '<host>',
  value: section({ mirrors }),
};

const registryHost: MapSpec = {
  kind: 'map',
  doc: 'Credentials and TLS per registry host (CRI-style).',
  origin: 'upstream',
  keyName: '<host>',
  value: section({
    auth: section({
      username: field('string', '', 'User name.', { secret: true }),
      password: field('string', '', 'Password.', { secret: true }),
      auth: field('string', '', 'base64 of "user:password", as in Docker\'s config.json.', { secret: true, check: basicAuthField }),
      identitytoken: field('string', '', 'Identity (refresh) token for the Bearer token flow.', { secret: true }),
    }),
    tls: section({
      insecure_skip_verify: field('boolean', false, 'Do not verify the registry\'s certificate.'),
      ca_file: field('string', '', 'Extra CA certificate (PEM) trusted for this host.', { check: emptyOrAbsolutePath }),
      cert_file: field('string', '', 'Client certificate (PEM); needs key_file.', { check: emptyOrAbsolutePath }),
      key_file: field('string', '', 'Client key (PEM); needs cert_file.', { check: emptyOrAbsolutePath }),
    }),
  }),
};

const registry = section({
  config_path: field('string', '/etc/containerd/certs.d', 'containerd hosts directories (`<dir>/<host>/hosts.toml`), \':\'-separated; missing ones are ignored; \'\' = none. Upstream default: \'\'.', { check: pathList }),
  configs: registryHost,
});

export const CONFIG_SCHEMA: SectionSpec = section({
  root_path: field('string', DEFAULT_ROOT_PATH, 'Directory of the snapshotter\'s state: snapshots, metadata, content, cache. Flag `--root` wins.', { check: absolutePath, ...ours }),
  address: field('string', DEFAULT_ADDRESS, 'Unix socket of the gRPC snapshots service. Flag `--address` wins.', { check: absolutePath, ...ours }),
  log_level: field('string', 'info', 'Log level. Flag `--log-level` wins.', { oneOf: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], ...ours }),
  metrics_address: field('string', '', 'Where Prometheus metrics are served (`host:port` for tcp, a socket path for unix); \'\' = off.'),
  metrics_network: field('string', 'tcp', 'Network of `metrics_address`.', { oneOf: ['tcp', 'unix'] }),
  mount_timeout_sec: field('integer', 30, 'Time allowed to resolve and mount a layer on Prepare.', positive),
  skip_check_snapshotter_supported: field('boolean', false, 'Skip the start-up check that overlayfs works under `root_path`.'),
  pull_modes: pullModes,
  snapshotter,
  background_fetch: backgroundFetch,
  http,
  blob,
  fuse,
  cache,
  content_store: contentStore,
  resolver: section({ host: resolverHosts }),
  registry,
});
