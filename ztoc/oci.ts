/**
 * OCI image-spec shapes and media types. Key order in these interfaces is the order Go's
 * encoding/json writes the upstream structs, which our serializers follow so that JSON we
 * write looks like the upstream tools' output.
 */

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const MEDIA_TYPE_DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs?: { type: string; diff_ids: string[] };
  [key: string]: unknown;
}

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MEDIA_TYPE_OCI_INDEX || mt === MEDIA_TYPE_DOCKER_MANIFEST_LIST;
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MEDIA_TYPE_OCI_MANIFEST || mt === MEDIA_TYPE_DOCKER_MANIFEST;
}

export type LayerCompression = 'gzip' | 'uncompressed' | 'zstd' | 'unknown';

export function layerCompression(mediaType: string): LayerCompression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip') || mediaType === MEDIA_TYPE_DOCKER_LAYER_GZIP) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType === MEDIA_TYPE_OCI_LAYER || mediaType === MEDIA_TYPE_DOCKER_LAYER || mediaType.endsWith('.tar')) return 'uncompressed';
  return 'unknown';
}

export function isLayerMediaType(mediaType: string): boolean {
  return (
    mediaType.startsWith('application/vnd.oci.image.layer.') || mediaType.startsWith('application/vnd.docker.image.rootfs.')
  );
}

