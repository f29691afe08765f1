import { invalidArgument, isKind } from '../../errors/errors.js';
import { digestHex } from '../../ztoc/digest.js';
import { goJson, orderIndex } from '../../ztoc/go-json.js';
import { MEDIA_TYPE_OCI_INDEX, type Descriptor, type ImageIndex } from '../../ztoc/oci.js';
import { repoScope } from './auth.js';
import { readBody } from './http.js';
import { MANIFEST_LIMIT, getManifest } from './pull.js';
import { pushManifest } from './push.js';
import { repositoryName, type Reference } from './reference.js';
import { errorFrom, type Transport } from './transport.js';

/**
 * OCI 1.1 referrers: the referrers API, and for registries without it (404) the
 * `sha256-<hex>` tag whose image index lists the referrers.
 */
export function fallbackTag(subject: string): string {
  return `sha256-${digestHex(subject, 'subject digest')}`;
}

function parseIndex(bytes: Buffer, what: string): ImageIndex {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as ImageIndex;
    if (!Array.isArray(j.manifests)) throw new Error('no manifests list');
    return j;
  } catch (e) {
    throw invalidArgument(`${what}: not an image index: ${(e as Error).message}`);
  }
}

const filterType = (ds: Descriptor[], artifactType?: string): Descriptor[] => (artifactType ? ds.filter((d) => d.artifactType === artifactType) : ds);

/** The referrers API's list, or undefined when the registry answers 404 (no API). */
async function viaApi(t: Transport, ref: Reference, subject: string, artifactType?: string): Promise<Descriptor[] | undefined> {
  const what = `referrers of ${repositoryName(ref)}@${subject}`;
  const query: Record<string, string> = artifactType ? { artifactType } : {};
  return t.onHosts(ref.domain, 'pull', (host, retries) =>
    t.call(host, ref.domain, { method: 'GET', path: `${ref.path}/referrers/${subject}`, query, headers: { accept: MEDIA_TYPE_OCI_INDEX }, scopes: [repoScope(ref.path, 'pull')] }, `GET ${what} from ${host.host}`, async (s) => {
      if (s.res.statusCode === 404) {
        await s.res.body.dump().catch(() => undefined);
        return undefined;
      }
      if (s.res.statusCode !== 200) throw await errorFrom(s, `GET ${what} from ${host.host}`);
      const idx = parseIndex(await readBody(s.res, MANIFEST_LIMIT, what), what);
      // Filtering again is harmless when the registry applied it (OCI-Filters-Applied) and needed when it did not.
      return filterType(idx.manifests, artifactType);
    }, retries),
  );
}

async function fallbackIndex(t: Transport, ref: Reference, subject: string): Promise<ImageIndex | undefined> {
  try {
    const { bytes } = await getManifest(t, ref, fallbackTag(subject));
    return parseIndex(bytes, `referrers tag ${repositoryName(ref)}:${fallbackTag(subject)}`);
  } catch (e) {
    if (isKind(e, 'not-found')) return undefined;
    throw e;
  }
}

export async function referrers(t: Transport, ref: Reference, subject: string, artifactType?: string): Promise<Descriptor[]> {
  digestHex(subject, 'subject digest');
  const api = await viaApi(t, ref, subject, artifactType);
  if (api) return api;
  const idx = await fallbackIndex(t, ref, subject);
  return idx ? filterType(idx.manifests, artifactType) : [];
}

/** Adds `referrer` to the subject's fallback tag index (read-modify-write); no-op when listed already. */
export async function updateReferrersFallback(t: Transport, ref: Reference, subject: Descriptor, referrer: Descriptor): Promise<void> {
  const existing = await fallbackIndex(t, ref, subject.digest);
  const idx: ImageIndex = existing ?? { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };
  if (idx.manifests.some((d) => d.digest === referrer.digest)) return;
  const next: ImageIndex = { ...idx, mediaType: idx.mediaType ?? MEDIA_TYPE_OCI_INDEX, manifests: [...idx.manifests, referrer] };
  const bytes = Buffer.from(goJson(orderIndex(next)), 'utf8');
  await pushManifest(t, ref, fallbackTag(subject.digest), bytes, MEDIA_TYPE_OCI_INDEX);
}
