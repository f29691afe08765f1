import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { describe } from '../errors/errors.js';
import { registryOptionsFrom } from '../fetcher/registry/client-from-config.js';
import { RegistryClient } from '../fetcher/registry/registry-client.js';
import { SociIndexFinder } from '../fetcher/soci-index-finder.js';
import { BackgroundFetcher } from '../fs/background-fetcher.js';
import { FetchLimiter } from '../fs/fetch-limiter.js';
import { InflateWorkers } from '../fs/inflate-workers.js';
import { LinkEstimates } from '../fs/link-estimate.js';
import { SpanCache } from '../fs/span-cache.js';
import { LocalStore } from '../store/local-store.js';
import type { DaemonMetrics } from './metrics.js';
import { SociRemotePreparer } from './remote-preparer.js';
import type { Snapshotter } from './snapshotter.js';

export interface SociLayers {
  preparer: SociRemotePreparer;
  close(): Promise<void>;
}

/**
 * Everything the lazy path of the daemon needs, built once: the registry client, the local
 * artifact store (shared with the `soci` CLI under the same root), the span cache, the fetch
 * limit, the inflate threads and the background fetcher. Re-mounts the committed lazy layers before returning.
 */
export async function startSociLayers(config: Config, sn: Snapshotter, logger: Logger, metrics: DaemonMetrics | undefined): Promise<SociLayers> {
  const tmpDir = join(config.root_path, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const registry = new RegistryClient({ ...registryOptionsFrom(config), logger });
  const store = new LocalStore(config.root_path);
  const finder = new SociIndexFinder(registry, store, {
    v1: config.pull_modes.soci_v1.enable,
    v2: config.pull_modes.soci_v2.enable,
    storeFailed: (ztoc, err) => logger.warn({ ztoc, err: describe(err) }, 'zTOC not kept in the local store; it is fetched again next time'),
  });
  const cache = await SpanCache.open({
    directory: config.cache.directory,
    diskMaxBytes: config.cache.disk_cache_max_bytes,
    memoryMaxBytes: config.cache.memory_cache_max_bytes,
    logger,
    metrics: metrics?.spanCacheHooks(),
  });
  metrics?.observeSpanCache(cache);
  const background = new BackgroundFetcher({ config: config.background_fetch, logger, metrics: metrics?.backgroundHooks() });
  const limiter = new FetchLimiter(config.blob.max_concurrent_fetches);
  const decoder = new InflateWorkers(cache.buffers);
  const links = new LinkEstimates();
  metrics?.observeLinks(links);
  const preparer = new SociRemotePreparer({
    config,
    registry,
    finder,
    lazy: { registry, cache, limiter, decoder, links, background, config, logger, metrics: metrics?.spanReaderHooks(), fuseMetrics: metrics?.fuseOpHooks() },
    snapshotter: sn,
    logger,
    metrics,
    tmpDir,
  });
  const close = async (): Promise<void> => {
    await preparer.unmountAll();
    await background.stop();
    await decoder.close();
    cache.close();
    await registry.close();
    store.close();
  };
  try {
    const r = await preparer.remountAll();
    if (r.mounted || r.failed) logger.info(r, 're-mounted lazy layers');
  } catch (err) {
    // A refused start must not leave the layers mounted so far behind a process that exits.
    await close().catch(() => undefined);
    throw err;
  }
  return { preparer, close };
}
