import { stat } from 'node:fs/promises';
import type { IndexRecord, ZtocRecord } from './artifact-db.js';
import type { LocalStore } from './local-store.js';
import { parseSociIndex, ANN_IMAGE_MANIFEST_DIGEST, ARTIFACT_TYPE_SOCI_V2 } from '../ztoc/soci-index.js';
import { isIndexMediaType, type ImageIndex } from '../ztoc/oci.js';
import { formatPlatform } from '../ztoc/platform.js';

/** Manifests are small; anything bigger is a zTOC or a layer and is not parsed as JSON. */
const MAX_JSON_BLOB = 4 << 20;

/**
 * Rebuilds the artifact db from the blobs in the content directory, so that indexes and
 * zTOCs copied in by other tools become usable. Image refs are not recoverable from blobs
 * and are kept from the old db where it knew them.
 */
export async function rebuildDb(store: LocalStore): Promise<{ indexes: IndexRecord[]; ztocs: ZtocRecord[] }> {
  const known = new Map(store.db.listIndexes().map((i) => [i.digest, i]));
  const blobs = await store.content.list();
  const jsonBlobs: Array<{ digest: string; bytes: Buffer; mtime: Date }> = [];
  for (const digest of blobs) {
    const st = await stat(store.content.pathOf(digest));
    if (st.size > MAX_JSON_BLOB || st.size < 2) continue;
    const bytes = await store.content.get(digest).catch(() => undefined);
    if (bytes && bytes[0] === 0x7b) jsonBlobs.push({ digest, bytes, mtime: st.mtime });
  }
  const v2Subjects = new Map<string, { manifestDigest: string; platform: string }>();
  for (const b of jsonBlobs) {
    const idx = tryJson<ImageIndex>(b.bytes);
    if (!idx || !Array.isArray(idx.manifests) || !isIndexMediaType(idx.mediaType ?? 'application/vnd.oci.image.index.v1+json')) continue;
    for (const d of idx.manifests) {
      const m = d.annotations?.[ANN_IMAGE_MANIFEST_DIGEST];
      if (d.artifactType === ARTIFACT_TYPE_SOCI_V2 && m) v2Subjects.set(d.digest, { manifestDigest: m, platform: formatPlatform(d.platform) });
    }
  }
  const have = new Set(blobs);
  const indexes: IndexRecord[] = [];
  const ztocs = new Map<string, ZtocRecord>();
  for (const b of jsonBlobs) {
    let parsed;
    try {
      parsed = parseSociIndex(b.bytes);
    } catch {
      continue;
    }
    const old = known.get(b.digest);
    const v2 = v2Subjects.get(b.digest);
    indexes.push({
      digest: b.digest,
      size: b.bytes.length,
      imageRef: old?.imageRef ?? '',
      manifestDigest: parsed.manifest.subject?.digest ?? v2?.manifestDigest ?? old?.manifestDigest ?? '',
      platform: old?.platform ?? v2?.platform ?? '',
      version: parsed.version,
      created: old?.created ?? b.mtime.toISOString(),
    });
    for (const z of parsed.ztocs) {
      if (!have.has(z.ztocDigest)) continue;
      ztocs.set(`${z.ztocDigest} ${z.layerDigest}`, { digest: z.ztocDigest, layerDigest: z.layerDigest, spanSize: z.spanSize, size: z.ztocSize });
    }
  }
  store.db.replaceAll(indexes, [...ztocs.values()]);
  return { indexes, ztocs: [...ztocs.values()] };
}

function tryJson<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
