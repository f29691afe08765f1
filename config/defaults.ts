/**
 * Defaults that depend on other keys. The schema holds the sentinel a user would write
 * (0 = inherit, '' = derived path); here the sentinel becomes the effective value, so the rest of
 * the program never has to know about sentinels.
 */
import { join } from 'node:path';
import type { BlobConfig, Config, HttpConfig } from './types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** `validated` is the schema-shaped output of validateTable; the schema test keeps it in step with Config. */
export function resolveDerivedDefaults(validated: Record<string, unknown>): Config {
  const cfg = validated as unknown as Mutable<Config>;
  cfg.blob = inheritRetries(cfg.blob, cfg.http);
  cfg.cache = { ...cfg.cache, directory: cfg.cache.directory === '' ? join(cfg.root_path, 'cache') : cfg.cache.directory };
  return cfg;
}

function inheritRetries(blob: BlobConfig, http: HttpConfig): BlobConfig {
  return {
    ...blob,
    max_retries: blob.max_retries === 0 ? http.max_retries : blob.max_retries,
    min_wait_msec: blob.min_wait_msec === 0 ? http.min_wait_msec : blob.min_wait_msec,
    max_wait_msec: blob.max_wait_msec === 0 ? http.max_wait_msec : blob.max_wait_msec,
  };
}
