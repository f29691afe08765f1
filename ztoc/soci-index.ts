import { invalidArgument } from '../errors/errors.js';
import { isDigest, sha256Digest } from './digest.js';
import { goJson, orderManifest } from './go-json.js';
import { MEDIA_TYPE_OCI_MANIFEST, type Descriptor, type Manifest } from './oci.js';

/** SOCI index manifests (spec §3). Pure: values in, bytes out. */

export const ARTIFACT_TYPE_SOCI_V1 = 'application/vnd.amazon.soci.index.v1+json';
export const ARTIFACT_TYPE_SOCI_V2 = 'application/vnd.amazon.soci.index.v2+json';
export const MEDIA_TYPE_ZTOC = 'application/octet-stream';
export const MEDIA_TYPE_PREFETCH = 'application/vnd.amazon.soci.prefetch.v1+json';
export const EMPTY_CONFIG_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const EMPTY_CONFIG = new TextEncoder().encode('{}');

export const ANN_LAYER_DIGEST = 'com.amazon.soci.image-layer-digest';
export const ANN_LAYER_MEDIA_TYPE = 'com.amazon.soci.image-layer-mediaType';
export const ANN_SPAN_SIZE = 'com.amazon.soci.span-size';
export const ANN_DISABLE_XATTRS = 'com.amazon.soci.disable-xattrs';
export const ANN_BUILD_TOOL = 'com.amazon.soci.build-tool-identifier';
export const ANN_INDEX_DIGEST = 'com.amazon.soci.index-digest';
export const ANN_IMAGE_MANIFEST_DIGEST = 'com.amazon.soci.image-manifest-digest';

export type SociVersion = 'v1' | 'v2';

export interface ZtocLayerRef {
  ztocDigest: string;
  ztocSize: number;
  layerDigest: string;
  layerMediaType: string;
  spanSize: number;
  disableXattrs: boolean;
}

export interface SociIndexInput {
  version: SociVersion;
  ztocs: ZtocLayerRef[];
  /** The image manifest the index belongs to; written as `subject` for v1. */
  subject: Descriptor;
  buildTool: string;
}

export function artifactTypeFor(version: SociVersion): string {
  return version === 'v1' ? ARTIFACT_TYPE_SOCI_V1 : ARTIFACT_TYPE_SOCI_V2;
}

export function ztocDescriptor(z: ZtocLayerRef): Descriptor {
  const annotations: Record<string, string> = {
    [ANN_LAYER_DIGEST]: z.layerDigest,
    [ANN_LAYER_MEDIA_TYPE]: z.layerMediaType,
    [ANN_SPAN_SIZE]: String(z.spanSize),
  };
  if (z.disableXattrs) annotations[ANN_DISABLE_XATTRS] = 'true';
  return { mediaType: MEDIA_TYPE_ZTOC, digest: z.ztocDigest, size: z.ztocSize, annotations };
}

export function buildSociIndex(input: SociIndexInput): { manifest: Manifest; bytes: Uint8Array; digest: string } {
  if (input.ztocs.length === 0) throw invalidArgument('no ztocs created: no layer of the image qualifies for a zTOC');
  const artifactType = artifactTypeFor(input.version);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    artifactType,
    config: { mediaType: artifactType, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.length },
    layers: input.ztocs.map(ztocDescriptor),
    subject: input.version === 'v1' ? descriptorOnly(input.subject) : undefined,
    annotations: { [ANN_BUILD_TOOL]: input.buildTool },
  };
  const bytes = new TextEncoder().encode(goJson(orderManifest(manifest)));
  return { manifest, bytes, digest: sha256Digest(bytes) };
}

function descriptorOnly(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export interface ParsedSociIndex {
  version: SociVersion;
  manifest: Manifest;
  ztocs: ZtocLayerRef[];
  prefetch: Descriptor[];
}

/** Parses and checks a SOCI index manifest from any producer (ours or upstream). */
export function parseSociIndex(bytes: Uint8Array, what = 'soci index'): ParsedSociIndex {
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Manifest;
  } catch (e) {
    throw invalidArgument(`${what}: not valid JSON: ${(e as Error).message}`);
  }
  if (!m || typeof m !== 'object' || m.schemaVersion !== 2) throw invalidArgument(`${what}: schemaVersion must be 2`);
  const at = m.artifactType ?? m.config?.mediaType;
  let version: SociVersion;
  if (at === ARTIFACT_TYPE_SOCI_V1) version = 'v1';
  else if (at === ARTIFACT_TYPE_SOCI_V2) version = 'v2';
  else throw invalidArgument(`${what}: artifactType ${JSON.stringify(at)} is not a SOCI index`);
  if (!Array.isArray(m.layers)) throw invalidArgument(`${what}: layers missing`);
  const ztocs: ZtocLayerRef[] = [];
  const prefetch: Descriptor[] = [];
  for (const [i, l] of m.layers.entries()) {
    if (!l || typeof l !== 'object' || !isDigest(String(l.digest)) || !Number.isSafeInteger(l.size) || l.size < 0) {
      throw invalidArgument(`${what}: layer ${i} is not a valid descriptor`);
    }
    if (l.mediaType === MEDIA_TYPE_PREFETCH) {
      prefetch.push(l);
      continue;
    }
    const a = l.annotations ?? {};
    const layerDigest = a[ANN_LAYER_DIGEST];
    if (!layerDigest || !isDigest(layerDigest)) throw invalidArgument(`${what}: ztoc ${l.digest} lacks a valid ${ANN_LAYER_DIGEST}`);
    const spanSize = Number(a[ANN_SPAN_SIZE] ?? '0');
    ztocs.push({
      ztocDigest: l.digest,
      ztocSize: l.size,
      layerDigest,
      layerMediaType: a[ANN_LAYER_MEDIA_TYPE] ?? '',
      spanSize: Number.isSafeInteger(spanSize) ? spanSize : 0,
      disableXattrs: a[ANN_DISABLE_XATTRS] === 'true',
    });
  }
  return { version, manifest: m, ztocs, prefetch };
}
