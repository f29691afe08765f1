import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { pino } from 'pino';
import type { Config } from '../config/types.js';
import { failedPrecondition, notFound } from '../errors/errors.js';
import type { RegistryClient } from '../fetcher/registry/registry-client.js';
import { selectPlatformManifest } from '../fetcher/registry/platform-select.js';
import type { Reference } from '../fetcher/registry/reference.js';
import type { SociIndexFinder } from '../fetcher/soci-index-finder.js';
import { BackgroundFetcher } from '../fs/background-fetcher.js';
import { FetchLimiter } from '../fs/fetch-limiter.js';
import { InflateWorkers } from '../fs/inflate-workers.js';
import { LinkEstimates } from '../fs/link-estimate.js';
import { mountLazyLayer, type LazyLayer } from '../fs/lazy-layer.js';
import { buildLayerModel } from '../fs/layer-model.js';
import { SpanCache } from '../fs/span-cache.js';
import { isIndexMediaType, type ImageIndex, type Manifest, type Platform } from '../ztoc/oci.js';

export interface MountRequest {
  repo: Reference;
  layerDigest: string;
  mountpoint: string;
  platform: Platform;
  indexDigest?: string;
}

/** The image manifest of `repo` for `platform`, from the registry. */
export async function imageManifest(registry: RegistryClient, repo: Reference, platform: Platform): Promise<{ digest: string; manifest: Manifest }> {
  const { desc } = await registry.resolve(repo);
  const { bytes } = await registry.getManifest(repo, desc.digest);
  if (!isIndexMediaType(desc.mediaType)) return { digest: desc.digest, manifest: JSON.parse(bytes.toString()) as Manifest };
  const chosen = selectPlatformManifest(JSON.parse(bytes.toString()) as ImageIndex, platform);
  const m = await registry.getManifest(repo, chosen.digest);
  return { digest: chosen.digest, manifest: JSON.parse(m.bytes.toString()) as Manifest };
}

/** `soci mount`: one layer of an image, lazily, with no containerd; finds the index as the daemon does. */
export async function mountOneLayer(registry: RegistryClient, finder: SociIndexFinder, config: Config, req: MountRequest): Promise<{ layer: LazyLayer; close(): Promise<void> }> {
  const { digest, manifest } = await imageManifest(registry, req.repo, req.platform);
  const layer = manifest.layers.find((l) => l.digest === req.layerDigest);
  if (!layer) throw notFound(`layer ${req.layerDigest} is not a layer of image manifest ${digest}`);
  const index = await finder.find(req.repo, digest, req.indexDigest);
  if (!index) throw notFound(`no SOCI index found for image manifest ${digest} (looked in the local store, the v2 annotation and the referrers)`);
  const ref = index.parsed.ztocs.find((z) => z.layerDigest === req.layerDigest);
  if (!ref) throw failedPrecondition(`soci index ${index.digest} has no ztoc for layer ${req.layerDigest} (too small or not indexed)`);
  const logger = pino({ level: config.log_level }, pino.destination(2));
  const cache = await SpanCache.open({ directory: config.cache.directory, diskMaxBytes: config.cache.disk_cache_max_bytes, memoryMaxBytes: config.cache.memory_cache_max_bytes, logger });
  const background = new BackgroundFetcher({ config: config.background_fetch, logger });
  const decoder = new InflateWorkers(cache.buffers);
  decoder.warm();
  const mounted = await mountLazyLayer(
    { registry, cache, limiter: new FetchLimiter(config.blob.max_concurrent_fetches), decoder, links: new LinkEstimates(), background, config, logger },
    { repo: req.repo, layer, model: await buildLayerModel(layer, { bytes: await finder.ztoc(req.repo, ref.ztocDigest, ref.ztocSize), digest: ref.ztocDigest, disableXattrs: ref.disableXattrs }), mountpoint: resolvePath(req.mountpoint) },
  );
  logger.info({ layer: layer.digest, index: index.digest, discovery: index.how, mountpoint: req.mountpoint }, 'layer mounted');
  return {
    layer: mounted,
    close: async () => {
      await mounted.unmount();
      await background.stop();
      await decoder.close();
      await cache.removeLayer(layer.digest);
      cache.close();
    },
  };
}

/** Whether something is mounted at dir (by /proc/self/mountinfo). */
export async function isMounted(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const want = resolvePath(dir);
  return info.split('\n').some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === want);
}
