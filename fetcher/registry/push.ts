import { invalidArgument } from '../../errors/errors.js';
import { isDigest, sha256Digest } from '../../ztoc/digest.js';
import type { Descriptor } from '../../ztoc/oci.js';
import { repoScope } from './auth.js';
import { hasBlob } from './pull.js';
import { header } from './http.js';
import type { RegistryHost } from './hosts.js';
import { repositoryName, type Reference } from './reference.js';
import { withRetries, type RetryPolicy } from './retry.js';
import { errorFrom, type SentResponse, type Transport } from './transport.js';

/**
 * Uploads: blobs (exists check, cross-repository mount, monolithic PUT or chunked PATCH) and
 * manifests. An upload session cut by a fault is not resumed: the whole upload starts over.
 */
export type BlobData = Buffer | (() => AsyncIterable<Uint8Array>);

export const DEFAULT_CHUNK = 16 << 20;
const NO_RETRY: RetryPolicy = { max: 0, baseMs: 0, maxMs: 0 };

interface Session {
  host: RegistryHost;
  ref: Reference;
  scopes: string[];
  what: string;
}

async function step(t: Transport, s: Session, req: Parameters<Transport['call']>[2], expect: number[], label: string): Promise<SentResponse> {
  return t.call(s.host, s.ref.domain, req, `${label} ${s.what}`, async (sent) => {
    if (!expect.includes(sent.res.statusCode)) throw await errorFrom(sent, `${label} ${s.what} on ${s.host.host}`);
    await sent.res.body.dump().catch(() => undefined);
    return sent;
  }, NO_RETRY);
}

function location(sent: SentResponse, what: string): URL {
  const loc = header(sent.res, 'location');
  if (!loc) throw invalidArgument(`${what}: upload answer has no Location`);
  return new URL(loc, sent.url);
}

/** Groups a stream into chunks of `size` bytes (the last may be shorter). */
async function* rechunk(src: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of src) {
    let off = 0;
    while (off < c.length) {
      const k = Math.min(size - n, c.length - off);
      buf.set(c.subarray(off, off + k), n);
      n += k;
      off += k;
      if (n === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        n = 0;
      }
    }
  }
  if (n > 0) yield buf.subarray(0, n);
}

function chunksOf(data: BlobData, size: number): AsyncIterable<Buffer> {
  if (!Buffer.isBuffer(data)) return rechunk(data(), size);
  return (async function* () {
    for (let off = 0; off < data.length; off += size) yield data.subarray(off, Math.min(off + size, data.length));
  })();
}

async function upload(t: Transport, s: Session, desc: Descriptor, data: BlobData, mountFrom: string | undefined, chunk: number): Promise<void> {
  const query: Record<string, string> = mountFrom ? { mount: desc.digest, from: mountFrom } : {};
  const started = await step(t, s, { method: 'POST', path: `${s.ref.path}/blobs/uploads/`, query, headers: { 'content-length': '0' }, scopes: s.scopes }, [201, 202], 'POST');
  if (started.res.statusCode === 201) return;
  let loc = location(started, s.what);
  if (desc.size <= chunk) {
    const body = Buffer.isBuffer(data) ? data : await collect(data(), desc.size, s.what);
    loc.searchParams.set('digest', desc.digest);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length) };
    await step(t, s, { method: 'PUT', path: loc, headers, body, scopes: s.scopes }, [201], 'PUT');
    return;
  }
  let off = 0;
  for await (const c of chunksOf(data, chunk)) {
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(c.length), 'content-range': `${off}-${off + c.length - 1}` };
    const sent = await step(t, s, { method: 'PATCH', path: loc, headers, body: c, scopes: s.scopes }, [202], 'PATCH');
    loc = location(sent, s.what);
    off += c.length;
  }
  if (off !== desc.size) throw invalidArgument(`${s.what}: data has ${off} bytes, descriptor says ${desc.size}`);
  loc.searchParams.set('digest', desc.digest);
  await step(t, s, { method: 'PUT', path: loc, headers: { 'content-length': '0' }, scopes: s.scopes }, [201], 'PUT');
}

async function collect(src: AsyncIterable<Uint8Array>, size: number, what: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of src) {
    if (n + c.length > size) throw invalidArgument(`${what}: data longer than the descriptor's ${size} bytes`);
    buf.set(c, n);
    n += c.length;
  }
  if (n !== size) throw invalidArgument(`${what}: data has ${n} bytes, descriptor says ${size}`);
  return buf;
}

export interface PushBlobOptions {
  mountFrom?: string;
  chunkSize?: number;
}

export async function pushBlob(t: Transport, ref: Reference, desc: Descriptor, data: BlobData, policy: RetryPolicy, opts: PushBlobOptions = {}): Promise<void> {
  const what = `blob ${repositoryName(ref)}@${desc.digest}`;
  if (Buffer.isBuffer(data)) {
    if (data.length !== desc.size) throw invalidArgument(`push ${what}: data has ${data.length} bytes, descriptor says ${desc.size}`);
    if (sha256Digest(data) !== desc.digest) throw invalidArgument(`push ${what}: data does not hash to the descriptor's digest`);
  }
  if (await hasBlob(t, ref, desc.digest, 'push')) return;
  const scopes = [repoScope(ref.path, 'pull,push')];
  if (opts.mountFrom) scopes.push(repoScope(opts.mountFrom, 'pull'));
  const hosts = await t.hosts(ref.domain, 'push');
  const s: Session = { host: hosts[hosts.length - 1], ref, scopes, what };
  await withRetries({ what: `push ${what}`, policy }, () => upload(t, s, desc, data, opts.mountFrom, opts.chunkSize ?? DEFAULT_CHUNK));
}

export async function pushManifest(t: Transport, ref: Reference, tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; ociSubject: boolean }> {
  const digest = sha256Digest(bytes);
  const what = `PUT manifest ${repositoryName(ref)}:${tagOrDigest}`;
  if (isDigest(tagOrDigest) && tagOrDigest !== digest) throw invalidArgument(`${what}: content hashes to ${digest}`);
  const hosts = await t.hosts(ref.domain, 'push');
  const host = hosts[hosts.length - 1];
  const headers = { 'content-type': mediaType, 'content-length': String(bytes.length) };
  const req = { method: 'PUT' as const, path: `${ref.path}/manifests/${tagOrDigest}`, headers, body: bytes, scopes: [repoScope(ref.path, 'pull,push')] };
  return t.call(host, ref.domain, req, what, async (sent) => {
    if (sent.res.statusCode !== 201 && sent.res.statusCode !== 200) throw await errorFrom(sent, `${what} on ${host.host}`);
    await sent.res.body.dump().catch(() => undefined);
    const claimed = header(sent.res, 'docker-content-digest');
    if (claimed && claimed !== digest) throw invalidArgument(`${what}: registry stored digest ${claimed}, content hashes to ${digest}`);
    return { digest, ociSubject: header(sent.res, 'oci-subject') !== undefined };
  });
}
