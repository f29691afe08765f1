import type { Descriptor, ImageIndex, Manifest, Platform } from './oci.js';

/**
 * JSON as Go's encoding/json writes it: compact, struct field order, omitempty fields
 * dropped, and `<`, `>`, `&`, U+2028, U+2029 escaped. Upstream tools produce manifests this
 * way; matching it keeps our artifacts indistinguishable from theirs.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

type Json = Record<string, unknown>;

function put(o: Json, key: string, v: unknown): void {
  if (v === undefined || v === null || v === '') return;
  if (Array.isArray(v) && v.length === 0) return;
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return;
  o[key] = v;
}

function sortedRecord(r: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!r) return undefined;
  // Go marshals maps with sorted keys.
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function orderPlatform(p: Platform | undefined): Platform | undefined {
  if (!p) return undefined;
  const o: Json = { architecture: p.architecture, os: p.os };
  put(o, 'os.version', p['os.version']);
  put(o, 'os.features', p['os.features']);
  put(o, 'variant', p.variant);
  return o as unknown as Platform;
}

export function orderDescriptor(d: Descriptor): Descriptor {
  const o: Json = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  put(o, 'urls', d.urls);
  put(o, 'annotations', sortedRecord(d.annotations));
  put(o, 'data', d.data);
  put(o, 'platform', orderPlatform(d.platform));
  put(o, 'artifactType', d.artifactType);
  return o as unknown as Descriptor;
}

export function orderManifest(m: Manifest): Manifest {
  const o: Json = { schemaVersion: m.schemaVersion };
  put(o, 'mediaType', m.mediaType);
  put(o, 'artifactType', m.artifactType);
  o.config = orderDescriptor(m.config);
  o.layers = m.layers.map(orderDescriptor);
  put(o, 'subject', m.subject ? orderDescriptor(m.subject) : undefined);
  put(o, 'annotations', sortedRecord(m.annotations));
  return o as unknown as Manifest;
}

export function orderIndex(i: ImageIndex): ImageIndex {
  const o: Json = { schemaVersion: i.schemaVersion };
  put(o, 'mediaType', i.mediaType);
  put(o, 'artifactType', i.artifactType);
  o.manifests = i.manifests.map(orderDescriptor);
  put(o, 'subject', i.subject ? orderDescriptor(i.subject) : undefined);
  put(o, 'annotations', sortedRecord(i.annotations));
  return o as unknown as ImageIndex;
}
