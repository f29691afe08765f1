/**
 * The loaded, fully defaulted configuration. Keys are snake_case exactly as in the TOML file so
 * that a value in code can be traced to its key and its row in the docs without a mapping table.
 * config/schema.ts declares the same tree; a unit test checks the two agree.
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export type MetricsNetwork = 'tcp' | 'unix';

export interface PullModeConfig {
  readonly enable: boolean;
}

export interface PullModesConfig {
  readonly soci_v1: PullModeConfig;
  readonly soci_v2: PullModeConfig;
}

export interface SnapshotterConfig {
  readonly min_layer_size: number;
  readonly allow_invalid_mounts_on_restart: boolean;
}

export interface BackgroundFetchConfig {
  readonly disable: boolean;
  readonly silence_period_msec: number;
  readonly fetch_period_msec: number;
  readonly max_queue_size: number;
  readonly emit_metric_period_sec: number;
  readonly bandwidth_bytes_per_sec: number;
}

export interface HttpConfig {
  readonly dial_timeout_msec: number;
  readonly response_header_timeout_msec: number;
  readonly request_timeout_msec: number;
  readonly max_retries: number;
  readonly min_wait_msec: number;
  readonly max_wait_msec: number;
}

export interface BlobConfig {
  readonly valid_interval: number;
  readonly fetching_timeout_sec: number;
  /** Already resolved: 0 in the file means "inherit from [http]". */
  readonly max_retries: number;
  readonly min_wait_msec: number;
  readonly max_wait_msec: number;
  readonly max_span_verification_retries: number;
  readonly max_concurrent_fetches: number;
  readonly readahead_spans: number;
  readonly fetch_next_span: boolean;
}

export interface FuseConfig {
  readonly attr_timeout: number;
  readonly entry_timeout: number;
  readonly negative_timeout: number;
  readonly log_fuse_operations: boolean;
  readonly max_read: number;
  readonly readahead_kb: number;
  readonly allow_other: boolean;
}

export interface CacheConfig {
  readonly disk_cache_max_bytes: number;
  readonly memory_cache_max_bytes: number;
  /** Already resolved: '' in the file means <root_path>/cache. */
  readonly directory: string;
}

export interface ContentStoreConfig {
  readonly type: 'soci';
}

export interface MirrorConfig {
  readonly host: string;
  readonly insecure: boolean;
  readonly request_timeout_sec: number;
}

export interface ResolverHostConfig {
  readonly mirrors: readonly MirrorConfig[];
}

export interface ResolverConfig {
  readonly host: Readonly<Record<string, ResolverHostConfig>>;
}

export interface RegistryAuthConfig {
  readonly username: string;
  readonly password: string;
  readonly auth: string;
  readonly identitytoken: string;
}

export interface RegistryTlsConfig {
  readonly insecure_skip_verify: boolean;
  readonly ca_file: string;
  readonly cert_file: string;
  readonly key_file: string;
}

export interface RegistryHostConfig {
  readonly auth: RegistryAuthConfig;
  readonly tls: RegistryTlsConfig;
}

export interface RegistryConfig {
  readonly config_path: string;
  readonly configs: Readonly<Record<string, RegistryHostConfig>>;
}

export interface Config {
  readonly root_path: string;
  readonly address: string;
  readonly log_level: LogLevel;
  readonly metrics_address: string;
  readonly metrics_network: MetricsNetwork;
  readonly mount_timeout_sec: number;
  readonly skip_check_snapshotter_supported: boolean;
  readonly pull_modes: PullModesConfig;
  readonly snapshotter: SnapshotterConfig;
  readonly background_fetch: BackgroundFetchConfig;
  readonly http: HttpConfig;
  readonly blob: BlobConfig;
  readonly fuse: FuseConfig;
  readonly cache: CacheConfig;
  readonly content_store: ContentStoreConfig;
  readonly resolver: ResolverConfig;
  readonly registry: RegistryConfig;
}

/** Values the daemon's command-line flags may set; they win over the file. */
export interface ConfigOverrides {
  readonly root_path?: string;
  readonly address?: string;
  readonly log_level?: string;
}
