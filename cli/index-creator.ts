import { invalidArgument } from '../errors/errors.js';
import type { ImageSource } from '../fetcher/image-source.js';
import type { LocalStore } from '../store/local-store.js';
import { buildZtoc } from '../ztoc/build.js';
import {
  isIndexMediaType,
  isLayerMediaType,
  layerCompression,
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type Manifest,
  type Platform,
} from '../ztoc/oci.js';
import { formatPlatform, platformMatches } from '../ztoc/platform.js';
import { buildSociIndex, EMPTY_CONFIG, parseSociIndex, type SociVersion, type ZtocLayerRef } from '../ztoc/soci-index.js';
import { decodeZtoc } from '../ztoc/ztoc-codec.js';
import { needsXattrs } from '../ztoc/build.js';

export interface CreateOptions {
  spanSize: number;
  minLayerSize: number;
  force: boolean;
  version: SociVersion;
  buildTool: string;
}

export interface LayerOutcome {
  layerDigest: string;
  ztocDigest?: string;
  skipped?: string;
}

export interface CreatedIndex {
  digest: string;
  size: number;
  bytes: Uint8Array;
  manifest: Descriptor;
  platform: Platform | undefined;
  layers: LayerOutcome[];
  reused: boolean;
}

export interface ImageManifestRef {
  desc: Descriptor;
  manifest: Manifest;
  platform: Platform | undefined;
}

/** The image manifests of `ref` that match the wanted platforms. */
export async function selectManifests(source: ImageSource, ref: string, platforms: Platform[] | 'all'): Promise<{
  top: Descriptor;
  index?: ImageIndex;
  selected: ImageManifestRef[];
}> {
  const top = await source.resolve(ref);
  if (!isIndexMediaType(top.mediaType)) {
    const manifest = parseJson<Manifest>(await source.readBlob(top), `manifest ${top.digest}`);
    const config = parseJson<ImageConfig>(await source.readBlob(manifest.config), `config ${manifest.config.digest}`);
    const platform = config.os && config.architecture ? { os: config.os, architecture: config.architecture, variant: config.variant } : undefined;
    return { top, selected: [{ desc: top, manifest, platform }] };
  }
  const index = parseJson<ImageIndex>(await source.readBlob(top), `image index ${top.digest}`);
  const candidates = index.manifests.filter((d) => !d.artifactType && !d.annotations?.['vnd.docker.reference.type']);
  const chosen = platforms === 'all' ? candidates : candidates.filter((d) => platforms.some((p) => platformMatches(p, d.platform)));
  if (chosen.length === 0) {
    const wanted = platforms === 'all' ? 'any' : platforms.map(formatPlatform).join(', ');
    throw invalidArgument(`image ${ref} has no manifest for platform ${wanted}`);
  }
  const selected: ImageManifestRef[] = [];
  for (const desc of chosen) {
    selected.push({ desc, manifest: parseJson<Manifest>(await source.readBlob(desc), `manifest ${desc.digest}`), platform: desc.platform });
  }
  return { top, index, selected };
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (e) {
    throw invalidArgument(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function skipReason(layer: Descriptor, minLayerSize: number): string | undefined {
  if (!isLayerMediaType(layer.mediaType)) return `not a layer: ${layer.mediaType}`;
  const c = layerCompression(layer.mediaType);
  if (c !== 'gzip' && c !== 'uncompressed') return `unsupported layer media type ${layer.mediaType}`;
  if (layer.size < minLayerSize) return `layer size ${layer.size} < min layer size ${minLayerSize}`;
  return undefined;
}

interface PendingZtoc {
  ref: ZtocLayerRef;
  bytes?: Uint8Array;
}

/**
 * Builds one SOCI index for an image manifest. Nothing reaches the store until every layer
 * has been indexed, so a failure leaves no partial artifacts behind.
 */
export async function createIndexForManifest(
  source: ImageSource,
  store: LocalStore,
  imageRef: string,
  image: ImageManifestRef,
  opts: CreateOptions,
  onLayer: (o: LayerOutcome) => void = () => {},
): Promise<CreatedIndex> {
  const existing = store.db.listIndexes({ manifestDigest: image.desc.digest }).find((i) => i.version === opts.version);
  if (existing && !opts.force && (await store.content.has(existing.digest))) {
    return reuse(store, existing.digest, image, onLayer);
  }
  const pending: PendingZtoc[] = [];
  const outcomes: LayerOutcome[] = [];
  for (const layer of image.manifest.layers) {
    const reason = skipReason(layer, opts.minLayerSize);
    if (reason) {
      outcomes.push({ layerDigest: layer.digest, skipped: reason });
      onLayer(outcomes[outcomes.length - 1]);
      continue;
    }
    const p = await ztocFor(source, store, layer, opts);
    pending.push(p);
    outcomes.push({ layerDigest: layer.digest, ztocDigest: p.ref.ztocDigest });
    onLayer(outcomes[outcomes.length - 1]);
  }
  const index = buildSociIndex({ version: opts.version, ztocs: pending.map((p) => p.ref), subject: image.desc, buildTool: opts.buildTool });
  for (const p of pending) if (p.bytes) await store.content.put(p.bytes, p.ref.ztocDigest);
  await store.content.put(EMPTY_CONFIG);
  await store.content.put(index.bytes, index.digest);
  store.db.addIndex(
    {
      digest: index.digest,
      size: index.bytes.length,
      imageRef,
      manifestDigest: image.desc.digest,
      platform: formatPlatform(image.platform),
      version: opts.version,
      created: new Date().toISOString(),
    },
    pending.map((p) => ({ digest: p.ref.ztocDigest, layerDigest: p.ref.layerDigest, spanSize: p.ref.spanSize, size: p.ref.ztocSize })),
  );
  return { digest: index.digest, size: index.bytes.length, bytes: index.bytes, manifest: image.desc, platform: image.platform, layers: outcomes, reused: false };
}

async function ztocFor(source: ImageSource, store: LocalStore, layer: Descriptor, opts: CreateOptions): Promise<PendingZtoc> {
  if (!opts.force) {
    const known = store.db.listZtocs({ layerDigest: layer.digest }).find((z) => z.spanSize === opts.spanSize);
    if (known && (await store.content.has(known.digest))) {
      const disableXattrs = !needsXattrs(decodeZtoc(await store.content.get(known.digest)).toc);
      return { ref: { ztocDigest: known.digest, ztocSize: known.size, layerDigest: layer.digest, layerMediaType: layer.mediaType, spanSize: known.spanSize, disableXattrs } };
    }
  }
  const algorithm = layerCompression(layer.mediaType) === 'gzip' ? 'gzip' : 'uncompressed';
  let built;
  try {
    built = await buildZtoc(source.streamBlob(layer), { spanSize: opts.spanSize, algorithm, buildTool: opts.buildTool });
  } catch (e) {
    throw invalidArgument(`layer ${layer.digest}: ${(e as Error).message}`, e);
  }
  return {
    ref: {
      ztocDigest: built.digest,
      ztocSize: built.bytes.length,
      layerDigest: layer.digest,
      layerMediaType: layer.mediaType,
      spanSize: opts.spanSize,
      disableXattrs: built.disableXattrs,
    },
    bytes: built.bytes,
  };
}

async function reuse(store: LocalStore, digest: string, image: ImageManifestRef, onLayer: (o: LayerOutcome) => void): Promise<CreatedIndex> {
  const bytes = await store.content.get(digest);
  const parsed = parseSociIndex(bytes, `soci index ${digest}`);
  const byLayer = new Map(parsed.ztocs.map((z) => [z.layerDigest, z.ztocDigest]));
  const layers = image.manifest.layers.map((l) => {
    const z = byLayer.get(l.digest);
    return z ? { layerDigest: l.digest, ztocDigest: z } : { layerDigest: l.digest, skipped: 'no ztoc in existing index' };
  });
  layers.forEach(onLayer);
  return { digest, size: bytes.length, bytes, manifest: image.desc, platform: image.platform, layers, reused: true };
}
