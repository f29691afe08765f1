import { failedPrecondition, isKind, notFound } from '../errors/errors.js';
import type { RegistryClient } from '../fetcher/registry/registry-client.js';
import type { Reference } from '../fetcher/registry/reference.js';
import type { IndexRecord } from '../store/artifact-db.js';
import type { LocalStore } from '../store/local-store.js';
import { MEDIA_TYPE_OCI_MANIFEST, type Descriptor } from '../ztoc/oci.js';
import { EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, MEDIA_TYPE_ZTOC, parseSociIndex } from '../ztoc/soci-index.js';

export interface PushedIndex {
  index: IndexRecord;
  blobs: number;
  referrersFallback: 'updated' | 'registry-supports-referrers' | 'not-needed';
}

/** Runs fn over items with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Pushes one SOCI index with its zTOCs. For a v1 index (which names the image manifest as
 * `subject`) the referrers fallback tag is updated unless the registry said it indexes
 * subjects itself (OCI-Subject). Everything is content-addressed, so pushing twice is a no-op.
 */
export async function pushIndex(
  client: RegistryClient,
  store: LocalStore,
  repo: Reference,
  index: IndexRecord,
  opts: { maxConcurrentUploads: number; onBlob?: (d: Descriptor) => void },
): Promise<PushedIndex> {
  const bytes = await store.content.get(index.digest);
  const parsed = parseSociIndex(bytes, `soci index ${index.digest}`);
  const blobs: Descriptor[] = [
    ...parsed.ztocs.map((z) => ({ mediaType: MEDIA_TYPE_ZTOC, digest: z.ztocDigest, size: z.ztocSize })),
    ...parsed.prefetch,
  ];
  await eachLimited(blobs, opts.maxConcurrentUploads, async (d) => {
    await client.pushBlob(repo, d, await store.content.get(d.digest));
    opts.onBlob?.(d);
  });
  await client.pushBlob(repo, { mediaType: parsed.manifest.config.mediaType, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.length }, Buffer.from(EMPTY_CONFIG));
  const subject = parsed.manifest.subject;
  if (subject) await requireSubject(client, repo, subject.digest);
  const pushed = await client.pushManifest(repo, index.digest, bytes, MEDIA_TYPE_OCI_MANIFEST);
  if (!subject) return { index, blobs: blobs.length, referrersFallback: 'not-needed' };
  if (pushed.ociSubject) return { index, blobs: blobs.length, referrersFallback: 'registry-supports-referrers' };
  const referrer: Descriptor = {
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    digest: index.digest,
    size: bytes.length,
    annotations: parsed.manifest.annotations,
    artifactType: parsed.manifest.artifactType,
  };
  await client.updateReferrersFallback(repo, subject, referrer);
  return { index, blobs: blobs.length, referrersFallback: 'updated' };
}

async function requireSubject(client: RegistryClient, repo: Reference, digest: string): Promise<void> {
  try {
    await client.getManifest(repo, digest);
  } catch (e) {
    if (!isKind(e, 'not-found')) throw e;
    throw failedPrecondition(`image manifest ${digest} (the index's subject) is not in ${repo.domain}/${repo.path}: push the image first`);
  }
}

/** The newest index per platform that the local store holds for an image reference. */
export function indexesToPush(store: LocalStore, refNames: string[], platform?: string): IndexRecord[] {
  const all = refNames.flatMap((r) => store.db.listIndexes({ imageRef: r, platform }));
  if (all.length === 0) throw notFound(`no soci index for image ${refNames[0]} in the local store (run soci create first)`);
  const newest = new Map<string, IndexRecord>();
  for (const i of all) {
    const have = newest.get(i.platform);
    if (!have || i.created > have.created) newest.set(i.platform, i);
  }
  return [...newest.values()];
}
