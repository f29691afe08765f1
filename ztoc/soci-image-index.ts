import { invalidArgument } from '../errors/errors.js';
import { sha256Digest } from './digest.js';
import { goJson, orderIndex, orderManifest } from './go-json.js';
import {
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  isManifestMediaType,
  type Descriptor,
  type ImageIndex,
  type Manifest,
  type Platform,
} from './oci.js';
import { ANN_IMAGE_MANIFEST_DIGEST, ANN_INDEX_DIGEST, ARTIFACT_TYPE_SOCI_V2 } from './soci-index.js';

/** The SOCI v2 "SOCI-enabled image" (spec §4). Pure: manifests in, bytes out. */

export interface Blob {
  bytes: Uint8Array;
  digest: string;
}

/**
 * Rewrites an image manifest to point at its SOCI v2 index: the annotation is added and the
 * manifest and config media types become OCI ones. Layers and config bytes are untouched,
 * so the image runs unchanged on any runtime.
 */
export function rewriteManifestForSoci(manifest: Manifest, indexDigest: string): Manifest & Blob {
  if (!isManifestMediaType(manifest.mediaType ?? MEDIA_TYPE_OCI_MANIFEST)) {
    throw invalidArgument(`cannot convert manifest of media type ${manifest.mediaType}`);
  }
  const config: Descriptor = {
    ...manifest.config,
    mediaType: manifest.config.mediaType === MEDIA_TYPE_DOCKER_CONFIG ? MEDIA_TYPE_OCI_CONFIG : manifest.config.mediaType,
  };
  const out: Manifest = {
    ...manifest,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config,
    annotations: { ...(manifest.annotations ?? {}), [ANN_INDEX_DIGEST]: indexDigest },
  };
  const bytes = new TextEncoder().encode(goJson(orderManifest(out)));
  return { ...out, bytes, digest: sha256Digest(bytes) };
}

export interface ConvertedPlatform {
  /** Rewritten image manifest. */
  manifest: Descriptor;
  /** The SOCI v2 index manifest of that image manifest. */
  sociIndex: Descriptor;
  platform?: Platform;
}

/**
 * Builds the new top-level image index: the rewritten image manifests, the manifests that
 * were not converted (kept as they were), then one SOCI index entry per converted manifest.
 */
export function buildSociEnabledIndex(
  converted: ConvertedPlatform[],
  untouched: Descriptor[],
  annotations?: Record<string, string>,
): ImageIndex & Blob {
  const manifests: Descriptor[] = [];
  for (const c of converted) {
    manifests.push({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: c.manifest.digest, size: c.manifest.size, platform: c.platform });
  }
  manifests.push(...untouched);
  for (const c of converted) {
    manifests.push({
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest: c.sociIndex.digest,
      size: c.sociIndex.size,
      annotations: { [ANN_IMAGE_MANIFEST_DIGEST]: c.manifest.digest },
      platform: c.platform,
      artifactType: ARTIFACT_TYPE_SOCI_V2,
    });
  }
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests, annotations };
  const bytes = new TextEncoder().encode(goJson(orderIndex(index)));
  return { ...index, bytes, digest: sha256Digest(bytes) };
}

/** The SOCI v2 index digest a (rewritten) image manifest announces, if any. */
export function sociIndexDigestOf(manifest: Manifest): string | undefined {
  return manifest.annotations?.[ANN_INDEX_DIGEST];
}
