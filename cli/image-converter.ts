import type { ImageSink, ImageSource } from '../fetcher/image-source.js';
import type { LocalStore } from '../store/local-store.js';
import { sha256Digest } from '../ztoc/digest.js';
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type Descriptor, type Manifest, type Platform } from '../ztoc/oci.js';
import { formatPlatform } from '../ztoc/platform.js';
import { buildSociEnabledIndex, rewriteManifestForSoci, type ConvertedPlatform } from '../ztoc/soci-image-index.js';
import { ARTIFACT_TYPE_SOCI_V2, EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, parseSociIndex } from '../ztoc/soci-index.js';
import { createIndexForManifest, selectManifests, type CreateOptions, type LayerOutcome } from './index-creator.js';

export interface ConvertResult {
  index: Descriptor;
  converted: Array<ConvertedPlatform & { layers: LayerOutcome[] }>;
}

/** containerd garbage-collection labels that keep a blob's children alive (as containerd's own pull sets them). */
export function gcLabels(children: { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] }): Record<string, string> {
  const labels: Record<string, string> = {};
  if (children.config) labels['containerd.io/gc.ref.content.config'] = children.config.digest;
  children.layers?.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  children.manifests?.forEach((m, i) => (labels[`containerd.io/gc.ref.content.m.${i}`] = m.digest));
  return labels;
}

/**
 * `soci convert`: builds SOCI v2 indexes for the selected platforms and writes a
 * SOCI-enabled image (spec §4) to the sink under `dstRef`. Platforms not selected are left
 * out of the new image, as `ctr image convert --platform` does.
 */
export async function convertImage(
  source: ImageSource,
  sink: ImageSink,
  store: LocalStore,
  srcRef: string,
  dstRef: string,
  opts: CreateOptions & { platforms: Platform[] | 'all' },
  onLayer: (o: LayerOutcome) => void = () => {},
): Promise<ConvertResult> {
  const { selected } = await selectManifests(source, srcRef, opts.platforms);
  const converted: ConvertResult['converted'] = [];
  for (const image of selected) {
    const created = await createIndexForManifest(source, store, dstRef, image, { ...opts, version: 'v2' }, onLayer);
    const rewritten = rewriteManifestForSoci(image.manifest, created.digest);
    await copyImageContent(source, sink, image.manifest);
    await writeSociIndex(store, sink, created.digest, created.bytes);
    const manifestDesc: Descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: rewritten.digest, size: rewritten.bytes.length };
    await sink.writeBlob(manifestDesc, rewritten.bytes, gcLabels({ config: rewritten.config, layers: rewritten.layers }));
    const record = store.db.getIndex(created.digest);
    if (record) {
      store.db.addIndex({ ...record, imageRef: dstRef, manifestDigest: rewritten.digest, platform: formatPlatform(image.platform) }, []);
    }
    converted.push({
      manifest: manifestDesc,
      sociIndex: { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: created.digest, size: created.size, artifactType: ARTIFACT_TYPE_SOCI_V2 },
      platform: image.platform,
      layers: created.layers,
    });
  }
  const index = buildSociEnabledIndex(converted, []);
  const indexDesc: Descriptor = { mediaType: MEDIA_TYPE_OCI_INDEX, digest: index.digest, size: index.bytes.length };
  await sink.writeBlob(indexDesc, index.bytes, gcLabels({ manifests: index.manifests }));
  await sink.tagImage(dstRef, indexDesc);
  return { index: indexDesc, converted };
}

async function copyImageContent(source: ImageSource, sink: ImageSink, manifest: Manifest): Promise<void> {
  await sink.copyBlob(manifest.config, source);
  for (const layer of manifest.layers) await sink.copyBlob(layer, source);
}

async function writeSociIndex(store: LocalStore, sink: ImageSink, digest: string, bytes: Uint8Array): Promise<void> {
  const parsed = parseSociIndex(bytes, `soci index ${digest}`);
  await sink.writeBlob({ mediaType: ARTIFACT_TYPE_SOCI_V2, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.length }, EMPTY_CONFIG);
  for (const z of parsed.ztocs) {
    const ztoc = await store.content.get(z.ztocDigest);
    await sink.writeBlob({ mediaType: 'application/octet-stream', digest: z.ztocDigest, size: ztoc.length }, ztoc);
  }
  const desc: Descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: bytes.length };
  if (sha256Digest(bytes) !== digest) throw new Error(`soci index ${digest} bytes do not match their digest`);
  await sink.writeBlob(desc, bytes, gcLabels({ config: parsed.manifest.config, layers: parsed.manifest.layers }));
}
