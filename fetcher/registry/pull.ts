import { createHash } from 'node:crypto';
import { invalidArgument, isKind, notFound } from '../../errors/errors.js';
import { isDigest, sha256Digest } from '../../ztoc/digest.js';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  type Descriptor,
} from '../../ztoc/oci.js';
import { checkContentRange, checkRangeBounds, rangeHeader } from './content-range.js';
import { contentLength, cut, header, readBody, type BodyAlloc, type HttpResponse } from './http.js';
import { formatReference, objectOf, repositoryName, type Reference } from './reference.js';
import { DEFAULT_RETRY, backoffDelay, isNetworkError } from './retry.js';
import { repoScope } from './auth.js';
import { errorFrom, type SentResponse, type Transport } from './transport.js';

/** Reading from a registry: resolve, manifests, blobs, ranges. All verify what they can. */

export const MANIFEST_ACCEPT = [MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, '*/*'].join(', ');
/** containerd's limit for a manifest or index. */
export const MANIFEST_LIMIT = 4 << 20;

const pullScopes = (ref: Reference): string[] => [repoScope(ref.path, 'pull')];

function mediaTypeOf(res: HttpResponse, body?: Buffer): string {
  const ct = (header(res, 'content-type') ?? '').split(';')[0].trim();
  if (ct && ct !== 'application/json' && ct !== 'application/octet-stream' && ct !== 'text/plain') return ct;
  if (body) {
    try {
      const j = JSON.parse(body.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
      if (typeof j.mediaType === 'string') return j.mediaType;
      return Array.isArray(j.manifests) ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST;
    } catch {
      // not JSON: keep the generic type
    }
  }
  return ct || MEDIA_TYPE_OCI_MANIFEST;
}

function verifyBytes(bytes: Buffer, digest: string, what: string): void {
  const got = sha256Digest(bytes);
  if (got !== digest) throw invalidArgument(`${what}: digest mismatch, content hashes to ${got}`);
}

async function getManifestOnHosts(t: Transport, ref: Reference, obj: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const what = `GET manifest ${repositoryName(ref)}:${obj}`;
  return t.onHosts(ref.domain, 'pull', (host, retries) =>
    t.call(host, ref.domain, { method: 'GET', path: `${ref.path}/manifests/${obj}`, headers: { accept: MANIFEST_ACCEPT }, scopes: pullScopes(ref) }, `${what} from ${host.host}`, async (s) => {
      if (s.res.statusCode !== 200) throw await errorFrom(s, `${what} from ${host.host}`);
      const bytes = await readBody(s.res, MANIFEST_LIMIT, what);
      const digest = sha256Digest(bytes);
      if (isDigest(obj)) verifyBytes(bytes, obj, what);
      const claimed = header(s.res, 'docker-content-digest');
      if (!isDigest(obj) && claimed && claimed !== digest && claimed.startsWith('sha256:')) {
        throw invalidArgument(`${what}: registry says digest ${claimed}, content hashes to ${digest}`);
      }
      return { desc: { mediaType: mediaTypeOf(s.res, bytes), digest, size: bytes.length }, bytes };
    }, retries),
  );
}

export function getManifest(t: Transport, ref: Reference, digestOrTag: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
  return getManifestOnHosts(t, ref, digestOrTag);
}

/** HEAD with the manifest Accept list; undefined when the answer lacks what resolve needs. */
async function headManifest(s: SentResponse, ref: Reference, what: string): Promise<Descriptor | undefined> {
  if (s.res.statusCode === 404) throw await errorFrom(s, what);
  await s.res.body.dump().catch(() => undefined);
  if (s.res.statusCode !== 200) return undefined;
  const digest = header(s.res, 'docker-content-digest');
  const size = contentLength(s.res);
  const ct = (header(s.res, 'content-type') ?? '').split(';')[0].trim();
  if (!digest || !isDigest(digest) || size === undefined || !ct || ct === 'application/json') return undefined;
  if (ref.digest && digest !== ref.digest) return undefined;
  return { mediaType: ct, digest, size };
}

/** A tag or digest to its descriptor: HEAD first, GET when HEAD is refused or incomplete. */
export async function resolve(t: Transport, ref: Reference): Promise<Descriptor> {
  const obj = objectOf(ref);
  const what = `resolve ${formatReference(ref)}`;
  const viaHead = await t.onHosts(ref.domain, 'resolve', (host, retries) =>
    t.call(host, ref.domain, { method: 'HEAD', path: `${ref.path}/manifests/${obj}`, headers: { accept: MANIFEST_ACCEPT }, scopes: pullScopes(ref) }, `${what} on ${host.host}`, (s) =>
      headManifest(s, ref, `${what} on ${host.host}`), retries),
  ).catch((e: unknown) => {
    if (isKind(e, 'not-found')) throw notFound(`${what}: manifest not found`, e);
    throw e;
  });
  if (viaHead) return viaHead;
  return (await getManifestOnHosts(t, ref, obj)).desc;
}

function blobWhat(ref: Reference, desc: Descriptor): string {
  return `blob ${repositoryName(ref)}@${desc.digest}`;
}

/** A whole blob into memory, verified; refused above `limit` bytes before anything is read. */
export async function getBlob(t: Transport, ref: Reference, desc: Descriptor, limit: number): Promise<Buffer> {
  const what = blobWhat(ref, desc);
  if (desc.size > limit) throw invalidArgument(`${what}: ${desc.size} bytes exceeds the in-memory limit ${limit}; stream it`);
  return t.onHosts(ref.domain, 'pull', (host, retries) =>
    t.call(host, ref.domain, { method: 'GET', path: `${ref.path}/blobs/${desc.digest}`, scopes: pullScopes(ref) }, `GET ${what} from ${host.host}`, async (s) => {
      if (s.res.statusCode !== 200) throw await errorFrom(s, `GET ${what} from ${host.host}`);
      const len = contentLength(s.res);
      if (len !== undefined && len !== desc.size) {
        cut(s.res.body);
        throw invalidArgument(`GET ${what}: Content-Length ${len} differs from the descriptor's size ${desc.size}`);
      }
      const bytes = await readBody(s.res, desc.size, `GET ${what}`);
      if (bytes.length !== desc.size) throw invalidArgument(`GET ${what}: got ${bytes.length} of ${desc.size} bytes`);
      verifyBytes(bytes, desc.digest, `GET ${what}`);
      return bytes;
    }, retries),
  );
}

/**
 * `[start, endExclusive)` of a blob with a Range GET. A 206 must carry exactly that
 * Content-Range; a 200 (server ignored Range) is accepted only as the whole blob, verified.
 * A 206 body is read into `alloc`'s buffer.
 */
export async function fetchRange(t: Transport, ref: Reference, desc: Descriptor, start: number, endExclusive: number, alloc?: BodyAlloc): Promise<Buffer> {
  const what = `${blobWhat(ref, desc)} range [${start}, ${endExclusive})`;
  checkRangeBounds(start, endExclusive, desc.size, what);
  if (start === endExclusive) return Buffer.alloc(0);
  const want = endExclusive - start;
  return t.onHosts(ref.domain, 'pull', (host, retries) =>
    t.call(host, ref.domain, { method: 'GET', path: `${ref.path}/blobs/${desc.digest}`, headers: { range: rangeHeader(start, endExclusive) }, scopes: pullScopes(ref) }, `GET ${what} from ${host.host}`, async (s) => {
      const status = s.res.statusCode;
      if (status === 206) {
        try {
          checkContentRange(header(s.res, 'content-range'), start, endExclusive, desc.size, `GET ${what}`);
        } catch (e) {
          cut(s.res.body);
          throw e;
        }
        const bytes = await readBody(s.res, want, `GET ${what}`, alloc);
        if (bytes.length !== want) throw invalidArgument(`GET ${what}: got ${bytes.length} of ${want} bytes`);
        return bytes;
      }
      if (status === 200) return wholeInsteadOfRange(s, desc, start, endExclusive, `GET ${what}`);
      throw await errorFrom(s, `GET ${what} from ${host.host}`);
    }, retries),
  );
}

async function wholeInsteadOfRange(s: SentResponse, desc: Descriptor, start: number, end: number, what: string): Promise<Buffer> {
  const len = contentLength(s.res);
  if (len !== undefined && len !== desc.size) {
    cut(s.res.body);
    throw invalidArgument(`${what}: server answered 200 with ${len} bytes, not a range nor the whole ${desc.size}-byte blob`);
  }
  const bytes = await readBody(s.res, desc.size, what);
  if (bytes.length !== desc.size) throw invalidArgument(`${what}: server answered 200 with ${bytes.length} bytes, not the whole ${desc.size}-byte blob`);
  verifyBytes(bytes, desc.digest, what);
  return bytes.subarray(start, end);
}

/** Whether a blob exists (HEAD). */
export async function hasBlob(t: Transport, ref: Reference, digest: string, cap: 'pull' | 'push' = 'pull'): Promise<boolean> {
  const what = `HEAD blob ${repositoryName(ref)}@${digest}`;
  const scopes = [repoScope(ref.path, cap === 'push' ? 'pull,push' : 'pull')];
  const hosts = await t.hosts(ref.domain, cap);
  const host = hosts[hosts.length - 1];
  return t.call(host, ref.domain, { method: 'HEAD', path: `${ref.path}/blobs/${digest}`, scopes }, what, async (s) => {
    await s.res.body.dump().catch(() => undefined);
    if (s.res.statusCode === 200) return true;
    if (s.res.statusCode === 404) return false;
    throw await errorFrom(s, what);
  });
}

/**
 * A blob as a stream, verified at the end. A connection lost mid-body resumes with a Range
 * request from the next byte, so the caller never sees bytes twice.
 */
export async function* streamBlob(t: Transport, ref: Reference, desc: Descriptor, maxResumes: number): AsyncGenerator<Uint8Array> {
  const what = `GET ${blobWhat(ref, desc)}`;
  const h = createHash('sha256');
  let n = 0;
  let resumes = 0;
  for (;;) {
    const from = n;
    const s = await openStream(t, ref, desc, from, what);
    try {
      let skip = s.res.statusCode === 200 ? from : 0;
      for await (const chunk of s.res.body as AsyncIterable<Buffer>) {
        let c = chunk;
        if (skip > 0) {
          const k = Math.min(skip, c.length);
          skip -= k;
          c = c.subarray(k);
          if (c.length === 0) continue;
        }
        if (n + c.length > desc.size) throw invalidArgument(`${what}: more than the expected ${desc.size} bytes`);
        h.update(c);
        n += c.length;
        yield c;
      }
    } catch (e) {
      if (!isNetworkError(e) || resumes >= maxResumes || n >= desc.size) throw e;
      resumes++;
      await new Promise((r) => setTimeout(r, backoffDelay(resumes, DEFAULT_RETRY)));
      continue;
    } finally {
      cut(s.res.body);
    }
    if (n === desc.size || n === from || resumes >= maxResumes) break;
    resumes++;
  }
  if (n !== desc.size) throw invalidArgument(`${what}: truncated, ${n} of ${desc.size} bytes`);
  const got = 'sha256:' + h.digest('hex');
  if (got !== desc.digest) throw invalidArgument(`${what}: digest mismatch, content hashes to ${got}`);
}

async function openStream(t: Transport, ref: Reference, desc: Descriptor, from: number, what: string): Promise<SentResponse> {
  const headers: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
  return t.onHosts(ref.domain, 'pull', (host, retries) =>
    t.call(host, ref.domain, { method: 'GET', path: `${ref.path}/blobs/${desc.digest}`, headers, scopes: pullScopes(ref) }, `${what} from ${host.host}`, async (s) => {
      if (s.res.statusCode === 200 || (from > 0 && s.res.statusCode === 206)) {
        if (s.res.statusCode === 206) checkContentRange(header(s.res, 'content-range'), from, desc.size, desc.size, what);
        return s;
      }
      throw await errorFrom(s, `${what} from ${host.host}`);
    }, retries),
  );
}

