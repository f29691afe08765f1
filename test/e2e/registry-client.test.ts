import t from 'tap';
import { randomBytes } from 'node:crypto';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { RegistryImageSource } from '../../fetcher/registry/registry-source.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { fallbackTag } from '../../fetcher/registry/referrers.js';
import { sha256Digest } from '../../ztoc/digest.js';
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type Descriptor } from '../../ztoc/oci.js';
import { startRegistry } from '../helpers/registry.js';

const blobDesc = (data: Buffer, mediaType = 'application/octet-stream'): Descriptor => ({ mediaType, digest: sha256Digest(data), size: data.length });

function manifestFor(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    ...extra,
    config: blobDesc(config, 'application/vnd.oci.image.config.v1+json'),
    layers: layers.map((l) => blobDesc(l, 'application/vnd.oci.image.layer.v1.tar+gzip')),
  }));
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

t.test('anonymous pull and push against docker-registry', async (t) => {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const client = new RegistryClient({ uploadChunkBytes: 1 << 20 });
  t.teardown(() => client.close());
  const ref = parseReference(`${reg.host}/soci/app:v1`);

  const layer = randomBytes(3 * 1024 * 1024 + 17);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layerDesc = blobDesc(layer);
  t.equal(await client.hasBlob(ref, layerDesc.digest), false);
  // 3 MiB with 1 MiB chunks: POST, 4 PATCHes, PUT.
  await client.pushBlob(ref, layerDesc, () => chunked(layer, 300_000));
  await client.pushBlob(ref, blobDesc(config), config);
  t.equal(await client.hasBlob(ref, layerDesc.digest), true);
  const patches = (await reg.accessLog()).filter((e) => e.method === 'PATCH' && e.path.includes('/soci/app/blobs/uploads/'));
  t.equal(patches.length, 4, 'large blob went up in chunks');

  const before = (await reg.accessLog()).length;
  await client.pushBlob(ref, layerDesc, layer);
  const again = (await reg.accessLog()).slice(before);
  t.same(again.map((e) => e.method), ['HEAD'], 'existing blob: only a HEAD');

  const manifest = manifestFor(config, [layer]);
  const pushed = await client.pushManifest(ref, 'v1', manifest, MEDIA_TYPE_OCI_MANIFEST);
  t.equal(pushed.digest, sha256Digest(manifest));
  t.equal(pushed.ociSubject, false);

  const resolved = await client.resolve(`${reg.host}/soci/app:v1`);
  t.same(resolved.desc, { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256Digest(manifest), size: manifest.length });
  t.equal((await reg.accessLog()).filter((e) => e.path === '/v2/soci/app/manifests/v1').at(-1)?.method, 'HEAD', 'resolved with HEAD');
  const byDigest = await client.resolve(`${reg.host}/soci/app@${sha256Digest(manifest)}`);
  t.equal(byDigest.desc.digest, sha256Digest(manifest));

  const got = await client.getManifest(ref, sha256Digest(manifest));
  t.ok(got.bytes.equals(manifest), 'manifest byte-identical');
  t.equal(got.desc.mediaType, MEDIA_TYPE_OCI_MANIFEST);
  t.ok((await client.getBlob(ref, layerDesc)).equals(layer), 'whole blob');

  const parts: Buffer[] = [];
  for await (const c of client.streamBlob(ref, layerDesc)) parts.push(Buffer.from(c));
  t.ok(Buffer.concat(parts).equals(layer), 'streamed blob');

  for (const [s, e] of [[0, 1], [17, 65_553], [layer.length - 100, layer.length], [1 << 20, (1 << 20) + 4096]]) {
    t.ok((await client.fetchRange(ref, layerDesc, s, e)).equals(layer.subarray(s, e)), `range [${s}, ${e})`);
  }
  t.equal((await client.fetchRange(ref, layerDesc, 5, 5)).length, 0);
  // A range read into the caller's buffer, which is told as the bytes land.
  const seen: number[] = [];
  let given: Buffer | undefined;
  const into = Object.assign((n: number) => (given = Buffer.alloc(n)), { received: (n: number) => void seen.push(n) });
  const big = await client.fetchRange(ref, layerDesc, 1000, 1000 + (1 << 20), into);
  t.equal(big, given, 'read into the allocated buffer');
  t.ok(big.equals(layer.subarray(1000, 1000 + (1 << 20))), '1 MiB range');
  t.equal(seen.at(-1), 1 << 20, 'told of every byte');
  t.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]), `told in ${seen.length} growing steps`);
  await t.rejects(client.fetchRange(ref, layerDesc, 0, layer.length + 1), /outside the blob/);

  const missing = blobDesc(randomBytes(10));
  const err = await client.getBlob(ref, missing).then(() => ({ kind: "", message: "resolved" }), (e: unknown) => e as Error & { kind: string });
  t.equal(err.kind, 'not-found');
  t.match(err.message, new RegExp(`blob ${reg.host}/soci/app@${missing.digest}.*HTTP 404 BLOB_UNKNOWN`));
  const err2 = await client.resolve(`${reg.host}/soci/app:nope`).then(() => ({ kind: "", message: "resolved" }), (e: unknown) => e as Error & { kind: string });
  t.equal(err2.kind, 'not-found');
  t.match(err2.message, /resolve 127\.0\.0\.1:\d+\/soci\/app:nope: manifest not found/);
  const wrongSize = { ...layerDesc, size: layerDesc.size - 1 };
  const err3 = await client.getBlob(ref, wrongSize).then(() => ({ kind: "", message: "resolved" }), (e: unknown) => e as Error & { kind: string });
  t.equal(err3.kind, 'invalid-argument');
  t.match(err3.message, /Content-Length 3145745 differs from the descriptor's size 3145744/);

  // Cross-repository mount: the blob appears in another repo without being sent.
  const other = parseReference(`${reg.host}/soci/other:v1`);
  const mark = (await reg.accessLog()).length;
  await client.pushBlob(other, layerDesc, layer, { mountFrom: 'soci/app' });
  const mountLog = (await reg.accessLog()).slice(mark).filter((e) => e.path.startsWith('/v2/soci/other/'));
  t.same(mountLog.map((e) => `${e.method} ${e.status}`), ['HEAD 404', 'POST 201'], 'mounted, not uploaded');
  t.ok((await client.getBlob(other, layerDesc)).equals(layer));

  // Image index + platform selection.
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [{ ...blobDesc(manifest, MEDIA_TYPE_OCI_MANIFEST), platform: { os: 'linux', architecture: 'amd64' } }] }));
  await client.pushManifest(ref, 'multi', index, MEDIA_TYPE_OCI_INDEX);
  const ri = await client.resolve(`${reg.host}/soci/app:multi`);
  t.equal(ri.desc.mediaType, MEDIA_TYPE_OCI_INDEX);

  // An image source for soci create/convert.
  const src = new RegistryImageSource(client);
  const top = await src.resolve(`${reg.host}/soci/app:multi`);
  t.ok((await src.readBlob(top)).equals(index));
  t.ok((await src.readBlob(blobDesc(manifest, MEDIA_TYPE_OCI_MANIFEST))).equals(manifest));
  t.ok((await src.readRange(layerDesc, 100, 50)).equals(layer.subarray(100, 150)));
  t.equal(src.origin, `registry ${reg.host}/soci/app`);
});

t.test('referrers fallback tag on a registry without the referrers API', async (t) => {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const ref = parseReference(`${reg.host}/soci/ref:v1`);
  const config = Buffer.from('{}');
  const layer = randomBytes(1000);
  await client.pushBlob(ref, blobDesc(config), config);
  await client.pushBlob(ref, blobDesc(layer), layer);
  const image = manifestFor(config, [layer]);
  await client.pushManifest(ref, 'v1', image, MEDIA_TYPE_OCI_MANIFEST);
  const subject = blobDesc(image, MEDIA_TYPE_OCI_MANIFEST);

  t.same(await client.referrers(ref, subject.digest), [], 'none yet');
  const mk = (artifactType: string, n: number) => {
    const z = randomBytes(100 + n);
    const bytes = manifestFor(config, [z], { artifactType, subject });
    return { z, bytes, desc: { ...blobDesc(bytes, MEDIA_TYPE_OCI_MANIFEST), artifactType, annotations: { n: String(n) } } };
  };
  const a = mk('application/vnd.amazon.soci.index.v1+json', 1);
  const b = mk('application/vnd.example.other', 2);
  for (const r of [a, b]) {
    await client.pushBlob(ref, blobDesc(r.z), r.z);
    const res = await client.pushManifest(ref, r.desc.digest, r.bytes, MEDIA_TYPE_OCI_MANIFEST);
    t.equal(res.ociSubject, false, 'distribution 2.8 does not report OCI-Subject');
    await client.updateReferrersFallback(ref, subject, r.desc);
  }
  await client.updateReferrersFallback(ref, subject, a.desc);
  const all = await client.referrers(ref, subject.digest);
  t.same(all.map((d) => d.digest), [a.desc.digest, b.desc.digest], 'both, once each');
  t.same(all[0], a.desc);
  t.same((await client.referrers(ref, subject.digest, 'application/vnd.amazon.soci.index.v1+json')).map((d) => d.digest), [a.desc.digest]);
  const tagged = await client.getManifest(ref, fallbackTag(subject.digest));
  t.equal(tagged.desc.mediaType, MEDIA_TYPE_OCI_INDEX);
  t.equal((JSON.parse(tagged.bytes.toString()) as { manifests: unknown[] }).manifests.length, 2);
  const puts = (await reg.accessLog()).filter((e) => e.method === 'PUT' && e.path.endsWith(fallbackTag(subject.digest)));
  t.equal(puts.length, 2, 'the repeated update wrote nothing');
  t.match((await reg.accessLog()).filter((e) => e.path.includes('/referrers/')).map((e) => e.status), [404], 'API tried first');
});
