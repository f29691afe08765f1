import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { LRUCache } from 'lru-cache';
import { describe, invalidArgument, unavailable } from '../errors/errors.js';
import { parseReference, type Reference } from '../fetcher/registry/reference.js';
import type { RegistryClient } from '../fetcher/registry/registry-client.js';
import type { FoundIndex, SociIndexFinder } from '../fetcher/soci-index-finder.js';
import { FetchLimiter } from '../fs/fetch-limiter.js';
import { mountLazyLayer, type LazyLayer, type LazyLayerDeps } from '../fs/lazy-layer.js';
import { buildLayerModel, type LayerModel } from '../fs/layer-model.js';
import type { Descriptor, Manifest } from '../ztoc/oci.js';
import type { ZtocLayerRef } from '../ztoc/soci-index.js';
import type { Labels } from './labels.js';
import type { DaemonMetrics } from './metrics.js';
import { unpackLayer } from './local-unpack.js';
import type { RemoteLayer, Scope, Snapshot } from './snapshot-store.js';
import { TARGET_SNAPSHOT_LABEL, type RemotePreparer, type Snapshotter } from './snapshotter.js';

export { LABEL_IMAGE_REF, LABEL_MANIFEST_DIGEST, LABEL_LAYER_DIGEST, LABEL_SOCI_INDEX_DIGEST } from './handshake-labels.js';
import { LABEL_IMAGE_REF, LABEL_MANIFEST_DIGEST, LABEL_LAYER_DIGEST, LABEL_SOCI_INDEX_DIGEST } from './handshake-labels.js';

export type LayerOutcome = 'lazy' | 'local' | 'containerd';

export interface RemotePreparerDeps {
  config: Config;
  registry: RegistryClient;
  finder: SociIndexFinder;
  lazy: LazyLayerDeps;
  snapshotter: Snapshotter;
  logger: Logger;
  metrics?: DaemonMetrics;
  tmpDir: string;
}

interface ImageFacts {
  manifest: Manifest;
  index: FoundIndex | undefined;
}

/**
 * containerd's remote-snapshot handshake for SOCI (containerd-integration.md §4): for a layer
 * of an image that has a SOCI index, the layer is either mounted lazily (it has a zTOC) or
 * fetched and unpacked here (it has none), committed under containerd's target name, and
 * Prepare answers AlreadyExists. Without an index, containerd unpacks as usual.
 */
export class SociRemotePreparer implements RemotePreparer {
  private readonly mounted = new Map<number, LazyLayer>();
  /** Per image manifest, so that the layers of one pull look the index up once. */
  private readonly images = new Map<string, Promise<ImageFacts>>();
  private readonly prefetched = new WeakSet<ImageFacts>();
  /** Layer models built ahead of their Prepare; those a pull that stopped halfway leaves are dropped after 10 minutes. */
  private readonly models = new LRUCache<string, Promise<LayerModel>>({ max: 16, ttl: 10 * 60_000, ttlAutopurge: true });

  constructor(private readonly d: RemotePreparerDeps) {}

  async tryPrepareRemote(ns: string, key: string, parent: string, labels: Labels, scope: Scope): Promise<'not-remote' | { committedAs: string }> {
    const target = labels[TARGET_SNAPSHOT_LABEL];
    const imageRef = labels[LABEL_IMAGE_REF];
    const layerDigest = labels[LABEL_LAYER_DIGEST];
    const manifestDigest = labels[LABEL_MANIFEST_DIGEST];
    if (!target || !imageRef || !layerDigest || !manifestDigest) return 'not-remote';
    const log = this.d.logger.child({ layer: layerDigest, key, image: imageRef });
    if (this.d.snapshotter.exists(scope, target)) return { committedAs: target };
    const repo = parseReference(imageRef);
    const explicit = labels[LABEL_SOCI_INDEX_DIGEST] || undefined;
    let facts: ImageFacts;
    try {
      facts = await this.imageFacts(repo, manifestDigest, explicit);
    } catch (err) {
      // A client that names an index wants it; anything else degrades to a normal pull.
      if (explicit) throw err;
      log.warn({ err: describe(err) }, 'soci index lookup failed; containerd unpacks the layer');
      return this.outcome(log, 'containerd');
    }
    if (!facts.index) return this.outcome(log, 'containerd');
    const layer = facts.manifest.layers.find((l) => l.digest === layerDigest);
    if (!layer) throw invalidArgument(`layer ${layerDigest} is not in image manifest ${manifestDigest} of ${imageRef}`);
    if (!this.prefetched.has(facts)) {
      this.prefetched.add(facts);
      this.prefetchModels(repo, facts.manifest, facts.index);
      this.d.lazy.decoder?.warm?.();
    }
    const ztoc = facts.index.parsed.ztocs.find((z) => z.layerDigest === layerDigest);
    const lazy = ztoc !== undefined && layer.size >= this.d.config.snapshotter.min_layer_size;
    const remote: RemoteLayer = {
      imageRef,
      layerDigest,
      indexDigest: facts.index.digest,
      namespace: ns,
      extra: lazy ? { mode: 'lazy', ztocDigest: ztoc.ztocDigest, ztocSize: String(ztoc.ztocSize), disableXattrs: String(ztoc.disableXattrs), layerSize: String(layer.size), layerMediaType: layer.mediaType } : { mode: 'local' },
    };
    const t0 = performance.now();
    let mountedLayer: LazyLayer | undefined;
    try {
      const snap = await this.d.snapshotter.commitRemote(scope, { key, parent, name: target, labels, remote: lazy ? remote : null }, async (dir) => {
        if (lazy) {
          mountedLayer = await this.mountLazy(repo, layer, remote, dir);
          return 'lazy';
        }
        await unpackLayer(this.d.registry.streamBlob(repo, layer), layer.mediaType, dir, { tmpDir: this.d.tmpDir });
        return 'local';
      });
      if (mountedLayer) this.mounted.set(snap.id, mountedLayer);
    } catch (err) {
      await mountedLayer?.unmount().catch(() => undefined);
      this.d.metrics?.layerMounted('error');
      log.error({ err: describe(err) }, 'layer could not be prepared');
      throw err;
    }
    this.outcome(log, lazy ? 'lazy' : 'local', performance.now() - t0);
    return { committedAs: target };
  }

  private outcome(log: Logger, outcome: LayerOutcome, ms?: number): 'not-remote' {
    this.d.metrics?.layerMounted(outcome);
    log.info({ outcome, ms: ms === undefined ? undefined : Math.round(ms) }, `layer ${outcome === 'containerd' ? 'left to containerd' : outcome === 'lazy' ? 'mounted lazily' : 'unpacked by the snapshotter'}`);
    return 'not-remote';
  }

  private imageFacts(repo: Reference, manifestDigest: string, explicit: string | undefined): Promise<ImageFacts> {
    const cacheKey = `${manifestDigest} ${explicit ?? ''}`;
    let p = this.images.get(cacheKey);
    if (!p) {
      p = (async () => {
        // Independent look-ups, both on the way to the first zTOC download.
        const [{ bytes }, index] = await Promise.all([this.d.registry.getManifest(repo, manifestDigest), this.d.finder.find(repo, manifestDigest, explicit)]);
        return { manifest: JSON.parse(bytes.toString('utf8')) as Manifest, index };
      })();
      this.images.set(cacheKey, p);
      p.catch(() => this.images.delete(cacheKey));
    }
    return p;
  }

  /**
   * containerd prepares an image's layers one after another; fetching every zTOC the pull will
   * need at the first layer keeps the link busy, and building each layer's model as its zTOC
   * arrives overlaps that CPU work with the downloads still running. Largest first, so that
   * the builds left when the link goes quiet are those of small zTOCs; two at a time, as one
   * at a time made the pull 0.5-1 s slower at 100 Mbit/s (all at once: the largest, last,
   * was built after the link went quiet). The largest is alone on the link, though: on a fast
   * link the builds are the bound, and the largest one (0.6-0.8 s for 44,000 files) then
   * starts when its zTOC is in, not when it has shared the link with the next (1 Gbit/s:
   * from the index found to every model built 2.07-2.21 s -> 1.82 s).
   * A failure is logged here and reported by that layer's Prepare.
   */
  private prefetchModels(repo: Reference, manifest: Manifest, index: FoundIndex): void {
    const min = this.d.config.snapshotter.min_layer_size;
    const wanted = index.parsed.ztocs
      .map((z) => ({ z, layer: manifest.layers.find((l) => l.digest === z.layerDigest) }))
      .filter((w): w is { z: ZtocLayerRef; layer: Descriptor } => w.layer !== undefined && w.layer.size >= min && !this.models.has(modelKey(w.layer.digest, w.z.ztocDigest)))
      .sort((a, b) => b.z.ztocSize - a.z.ztocSize);
    const downloads = new FetchLimiter(PREFETCH_CONCURRENCY);
    let largest: Promise<unknown> | undefined;
    for (const { z, layer } of wanted) {
      const key = modelKey(layer.digest, z.ztocDigest);
      const download = (): Promise<Buffer> => downloads.run('demand', () => this.d.finder.ztoc(repo, z.ztocDigest, z.ztocSize));
      const bytes = largest ? largest.then(download, download) : (largest = download());
      const model = bytes.then((b) => buildLayerModel(layer, { bytes: b, digest: z.ztocDigest, disableXattrs: z.disableXattrs }));
      model.catch((err: unknown) => {
        if (this.models.get(key) === model) this.models.delete(key);
        this.d.logger.debug({ layer: z.layerDigest, ztoc: z.ztocDigest, err: describe(err) }, 'zTOC prefetch failed');
      });
      this.models.set(key, model);
    }
  }

  /** The layer's model from the prefetch (each is used once), else fetched and built now. */
  private async layerModel(repo: Reference, layer: Descriptor, e: Record<string, string>): Promise<LayerModel> {
    const key = modelKey(layer.digest, e.ztocDigest);
    const prefetched = this.models.get(key);
    if (prefetched) {
      this.models.delete(key);
      return prefetched;
    }
    const bytes = await this.d.finder.ztoc(repo, e.ztocDigest, Number(e.ztocSize));
    return buildLayerModel(layer, { bytes, digest: e.ztocDigest, disableXattrs: e.disableXattrs === 'true' });
  }

  private async mountLazy(repo: Reference, layer: Descriptor, remote: RemoteLayer, dir: string): Promise<LazyLayer> {
    const model = await this.layerModel(repo, layer, remote.extra ?? {});
    return mountLazyLayer(this.d.lazy, { repo, layer, model, mountpoint: dir });
  }

  async release(snapshot: Snapshot): Promise<void> {
    const l = this.mounted.get(snapshot.id);
    if (!l) return;
    this.mounted.delete(snapshot.id);
    await l.unmount();
    this.d.metrics?.lazyLayerUnmounted();
    const stillUsed = [...this.mounted.values()].some((m) => m.layerDigest === l.layerDigest);
    if (!stillUsed) await this.d.lazy.cache.removeLayer(l.layerDigest);
  }

  /**
   * Re-mounts every committed lazy snapshot at its directory (after a restart or a crash,
   * before the daemon serves). Each layer's source is probed first: an unreachable one fails
   * the start, or with allow_invalid_mounts_on_restart is reported and mounted anyway, so that
   * its cached spans stay readable and the rest is fetched once the registry is back.
   */
  async remountAll(): Promise<{ mounted: number; unreachable: number; failed: number }> {
    const allow = this.d.config.snapshotter.allow_invalid_mounts_on_restart;
    const r = { mounted: 0, unreachable: 0, failed: 0 };
    for (const snap of this.d.snapshotter.store.remoteCommitted()) {
      const remote = snap.remote;
      const e = remote?.extra ?? {};
      if (!remote || e.mode !== 'lazy') continue;
      const log = this.d.logger.child({ layer: remote.layerDigest, key: snap.info.name, image: remote.imageRef });
      try {
        const repo = parseReference(remote.imageRef);
        const layer: Descriptor = { mediaType: e.layerMediaType, digest: remote.layerDigest, size: Number(e.layerSize) };
        const probe = await this.probeSource(repo, layer);
        if (probe && !allow) throw probe;
        this.mounted.set(snap.id, await this.mountLazy(repo, layer, remote, this.d.snapshotter.fsDir(snap)));
        r.mounted++;
        if (probe) {
          r.unreachable++;
          log.error({ err: describe(probe) }, 'lazy layer re-mounted but its source is unreachable; uncached reads fail until it is back');
        } else {
          log.info('lazy layer re-mounted');
        }
      } catch (err) {
        r.failed++;
        log.error({ err: describe(err) }, 'lazy layer could not be re-mounted');
        if (!allow) throw err;
      }
    }
    this.d.metrics?.restartRemounts(r);
    return r;
  }

  /** One byte of the layer blob, through the same client and hosts as span reads; the error if that fails. */
  private async probeSource(repo: Reference, layer: Descriptor): Promise<Error | undefined> {
    try {
      await this.d.registry.fetchRange(repo, layer, 0, 1);
      return undefined;
    } catch (err) {
      const cause = err instanceof Error ? err.message : String(err);
      return unavailable(`source of lazy layer ${layer.digest} (${repo.domain}/${repo.path}) cannot be reached: ${cause}`, err);
    }
  }

  async unmountAll(): Promise<void> {
    for (const [id, l] of this.mounted) {
      this.mounted.delete(id);
      await l.unmount().catch((err: unknown) => this.d.logger.warn({ layer: l.layerDigest, err: describe(err) }, 'unmount failed'));
    }
  }
}

const PREFETCH_CONCURRENCY = 2;

function modelKey(layerDigest: string, ztocDigest: string | undefined): string {
  return `${layerDigest} ${ztocDigest ?? ''}`;
}
