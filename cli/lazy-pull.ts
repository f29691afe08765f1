import { randomBytes } from 'node:crypto';
import { invalidArgument, isKind } from '../errors/errors.js';
import type { ContainerdClient } from '../fetcher/containerd-client.js';
import type { SnapshotsClient } from '../fetcher/containerd-snapshots.js';
import type { RegistryClient } from '../fetcher/registry/registry-client.js';
import { formatReference, type Reference } from '../fetcher/registry/reference.js';
import { selectPlatformManifest } from '../fetcher/registry/platform-select.js';
import type { FoundIndex, SociIndexFinder } from '../fetcher/soci-index-finder.js';
import { chainIds } from '../ztoc/chain-id.js';
import { isIndexMediaType, type Descriptor, type ImageConfig, type ImageIndex, type Manifest, type Platform } from '../ztoc/oci.js';
import { gcLabels } from './image-converter.js';

import {
  LABEL_IMAGE_LAYERS,
  LABEL_IMAGE_REF,
  LABEL_LAYER_DIGEST,
  LABEL_MANIFEST_DIGEST,
  LABEL_SOCI_INDEX_DIGEST,
  TARGET_SNAPSHOT_LABEL as LABEL_SNAPSHOT_REF,
} from '../daemon/handshake-labels.js';
/** containerd keeps the image-layers label short; it may be cut, as the CRI plugin does. */
const IMAGE_LAYERS_LIMIT = 4096;

export type LayerMode = 'lazy' | 'local' | 'containerd';

export interface PulledLayer {
  digest: string;
  size: number;
  chainId: string;
  /** What the snapshotter did: served it itself (lazy or local), or containerd unpacked it. */
  mode: LayerMode;
  ms: number;
}

export interface LazyPullResult {
  name: string;
  manifest: Descriptor;
  index?: FoundIndex;
  layers: PulledLayer[];
}

export interface LazyPullDeps {
  registry: RegistryClient;
  containerd: ContainerdClient;
  finder: SociIndexFinder;
  snapshotter: string;
}

function imageLayersLabel(layers: Descriptor[], from: number): string {
  let s = '';
  for (const l of layers.slice(from)) {
    const next = s ? `${s},${l.digest}` : l.digest;
    if (next.length > IMAGE_LAYERS_LIMIT) break;
    s = next;
  }
  return s;
}

async function resolveManifest(registry: RegistryClient, ref: Reference, platform: Platform): Promise<{ top: Descriptor; topBytes: Buffer; desc: Descriptor; bytes: Buffer }> {
  const { desc: top } = await registry.resolve(ref);
  const topBytes = (await registry.getManifest(ref, top.digest)).bytes;
  if (!isIndexMediaType(top.mediaType)) return { top, topBytes, desc: top, bytes: topBytes };
  const desc = selectPlatformManifest(JSON.parse(topBytes.toString()) as ImageIndex, platform);
  return { top, topBytes, desc, bytes: (await registry.getManifest(ref, desc.digest)).bytes };
}

/**
 * `soci image rpull`: writes manifest and config to containerd under a lease, creates the
 * image record, then unpacks through containerd's snapshots service with the CRI labels, so
 * the SOCI snapshotter serves indexed layers lazily (it answers Prepare with AlreadyExists);
 * layers it leaves to containerd are fetched and applied here, as `ctr pull` would.
 */
export async function lazyPull(deps: LazyPullDeps, ref: Reference, platform: Platform, opts: { indexDigest?: string; onLayer?: (l: PulledLayer) => void }): Promise<LazyPullResult> {
  const { registry, containerd } = deps;
  const m = await resolveManifest(registry, ref, platform);
  const manifest = JSON.parse(m.bytes.toString()) as Manifest;
  const configBytes = await registry.getBlob(ref, manifest.config);
  const config = JSON.parse(configBytes.toString()) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw invalidArgument(`image ${formatReference(ref)}: config has ${diffIds.length} diff_ids for ${manifest.layers.length} layers`);
  const chains = chainIds(diffIds);
  const index = await deps.finder.find(ref, m.desc.digest, opts.indexDigest);
  const lease = await containerd.createLease({ ttl: 24 * 3600_000 });
  const c = containerd.withLease(lease.id);
  try {
    await c.writeContent(`rpull-${manifest.config.digest}`, configBytes, {
      expectedDigest: manifest.config.digest,
      labels: { [`containerd.io/gc.ref.snapshot.${deps.snapshotter}`]: chains.at(-1) ?? '' },
    });
    await c.writeContent(`rpull-${m.desc.digest}`, m.bytes, { expectedDigest: m.desc.digest, labels: gcLabels({ config: manifest.config, layers: manifest.layers }) });
    if (m.top.digest !== m.desc.digest) {
      const idx = JSON.parse(m.topBytes.toString()) as ImageIndex;
      await c.writeContent(`rpull-${m.top.digest}`, m.topBytes, { expectedDigest: m.top.digest, labels: gcLabels({ manifests: idx.manifests }) });
    }
    const name = formatReference(ref);
    const target = { mediaType: m.top.mediaType, digest: m.top.digest, size: m.top.size };
    try {
      await c.createImage({ name, target });
    } catch (e) {
      if (!isKind(e, 'already-exists')) throw e;
      await c.updateImage({ name, target }, ['target']);
    }
    const sn = c.snapshots(deps.snapshotter);
    const layers: PulledLayer[] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const t0 = performance.now();
      const labels: Record<string, string> = {
        [LABEL_SNAPSHOT_REF]: chains[i],
        [LABEL_IMAGE_REF]: name,
        [LABEL_MANIFEST_DIGEST]: m.desc.digest,
        [LABEL_LAYER_DIGEST]: layer.digest,
        [LABEL_IMAGE_LAYERS]: imageLayersLabel(manifest.layers, i),
      };
      if (index) labels[LABEL_SOCI_INDEX_DIGEST] = index.digest;
      const mode = await unpackLayer(c, sn, registry, ref, layer, diffIds[i], chains[i], i === 0 ? '' : chains[i - 1], labels, index);
      const pulled = { digest: layer.digest, size: layer.size, chainId: chains[i], mode, ms: performance.now() - t0 };
      layers.push(pulled);
      opts.onLayer?.(pulled);
    }
    return { name, manifest: m.desc, index, layers };
  } finally {
    await containerd.deleteLease(lease.id).catch(() => undefined);
  }
}

async function unpackLayer(
  c: ContainerdClient,
  sn: SnapshotsClient,
  registry: RegistryClient,
  ref: Reference,
  layer: Descriptor,
  diffId: string,
  chainId: string,
  parent: string,
  labels: Record<string, string>,
  index: FoundIndex | undefined,
): Promise<LayerMode> {
  if (await snapshotExists(sn, chainId)) return index?.parsed.ztocs.some((z) => z.layerDigest === layer.digest) ? 'lazy' : 'containerd';
  const key = `extract-${randomBytes(8).toString('hex')} ${chainId}`;
  let mounts;
  try {
    mounts = await sn.prepare(key, parent, labels);
  } catch (e) {
    if (!isKind(e, 'already-exists')) throw e;
    return index?.parsed.ztocs.some((z) => z.layerDigest === layer.digest) ? 'lazy' : 'local';
  }
  try {
    const chunks = async function* (): AsyncGenerator<Buffer> {
      for await (const x of registry.streamBlob(ref, layer)) yield Buffer.from(x);
    };
    await c.writeContent(`rpull-${layer.digest}`, chunks(), { expectedDigest: layer.digest, expectedSize: layer.size });
    const applied = await c.diffApply(layer, mounts);
    if (applied.digest !== diffId) throw invalidArgument(`layer ${layer.digest}: unpacked to ${applied.digest}, config says ${diffId}`);
    await sn.commit(chainId, key, { [LABEL_SNAPSHOT_REF]: chainId });
    return 'containerd';
  } catch (e) {
    await sn.remove(key).catch(() => undefined);
    throw e;
  }
}

async function snapshotExists(sn: SnapshotsClient, key: string): Promise<boolean> {
  try {
    await sn.stat(key);
    return true;
  } catch (e) {
    if (isKind(e, 'not-found')) return false;
    throw e;
  }
}
