import { kindOf } from '../helpers/error-kind.js';
import { chainIds } from '../../ztoc/chain-id.js';
import t from 'tap';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ContainerdClient } from '../../fetcher/containerd-client.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { buildBusyboxImage, ociLayoutToTar, sha256Digest, type BuiltImage } from '../helpers/images.js';
import { tempDirFor } from '../helpers/tmp.js';
import { execOk } from '../helpers/exec.js';

const REF = 'docker.io/library/client-test:1';

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

let ctd: Containerd;
let img: BuiltImage;
let client: ContainerdClient;

t.before(async () => {
  const dir = await tempDirFor(t);
  img = await buildBusyboxImage(join(dir, 'layout'), {
    ref: REF,
    extraLayers: [{ tarFrom: async (d) => { await execOk('sh', ['-c', `head -c 3000000 /dev/urandom > ${d}/big`]); }, compression: 'gzip' }],
  });
  await ociLayoutToTar(join(dir, 'layout'), join(dir, 'image.tar'));
  ctd = await startContainerd();
  const res = await ctd.ctr(['images', 'import', join(dir, 'image.tar')]);
  if (res.code !== 0) throw new Error(`ctr images import: ${res.stderr}`);
  client = new ContainerdClient({ address: ctd.address, namespace: ctd.namespace });
});

t.teardown(async () => {
  client?.close();
  await ctd?.stop();
});

t.test('images: get, list, create, update, delete', async (t) => {
  const image = await client.getImage(REF);
  t.same(image.target, {
    mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest, size: img.manifestSize,
    annotations: { 'org.opencontainers.image.ref.name': REF },
  });
  t.ok(image.createdAt instanceof Date && image.createdAt.getTime() > Date.now() - 600_000, 'created_at decoded');
  t.same((await client.listImages()).map((i) => i.name), [REF]);

  const copy = await client.createImage({ name: 'example.com/copy:1', target: image.target, labels: { a: '1' } });
  t.same(copy.labels, { a: '1' });
  t.match(await kindOf(client.createImage({ name: 'example.com/copy:1', target: image.target })), /^already-exists: containerd Images.Create "example.com\/copy:1"/);
  const updated = await client.updateImage({ name: 'example.com/copy:1', labels: { b: '2' } });
  t.same(updated.labels, { b: '2' });
  t.equal(updated.target.digest, img.manifestDigest);
  t.same((await client.listImages(['name==example.com/copy:1'])).map((i) => i.name), ['example.com/copy:1'], 'filters pass through');
  await client.deleteImage('example.com/copy:1', { sync: true });
  t.match(await kindOf(client.getImage('example.com/copy:1')), /^not-found: containerd Images.Get "example.com\/copy:1": /);
});

t.test('content: info, read whole and ranges', async (t) => {
  t.same(await client.readContentAll(img.manifestDigest), img.manifest, 'manifest byte-identical');
  const big = img.layers[1];
  const info = await client.contentInfo(big.digest);
  t.equal(info.digest, big.digest);
  t.equal(info.size, big.size);
  const parts: Buffer[] = [];
  for await (const chunk of client.readContent(big.digest)) parts.push(chunk);
  t.ok(parts.length > 1, `layer streamed in ${parts.length} chunks`);
  t.equal(sha256Digest(Buffer.concat(parts)), big.digest, 'layer streamed byte-identical');
  const range = await collect(client.readContent(big.digest, { offset: 1000, size: 70000 }));
  t.same(range, big.blob.subarray(1000, 71000), 'range read');
  t.match(await kindOf(client.contentInfo(`sha256:${'0'.repeat(64)}`)), /^not-found: containerd Content.Info sha256:0{64}: /);
});

t.test('content: write under a lease, read back, labels, lease deletion frees it', async (t) => {
  const lease = await client.createLease({ ttl: 600_000, labels: { purpose: 'test' } });
  t.match(lease.id, /\S/);
  t.ok((await client.listLeases()).some((l) => l.id === lease.id && l.labels.purpose === 'test'));
  const leased = client.withLease(lease.id);
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  const digest = sha256Digest(data);
  const started = Date.now();
  const res = await leased.writeContent('test-write-1', chunked(data, 300_000), {
    expectedDigest: digest, expectedSize: data.length, labels: { 'example.com/kind': 'blob' },
  });
  const ms = Date.now() - started;
  t.same(res, { digest, size: data.length, existed: false });
  t.comment(`wrote ${data.length} bytes in ${ms} ms`);
  t.same(await leased.readContentAll(digest), data, 'read back byte-identical');
  t.same((await client.contentInfo(digest)).labels, { 'example.com/kind': 'blob' }, 'labels from the commit message');

  const again = await leased.writeContent('test-write-2', data, { expectedDigest: digest, expectedSize: data.length, labels: { extra: 'x' } });
  t.same(again, { digest, size: data.length, existed: true }, 'AlreadyExists is success');
  t.same((await client.contentInfo(digest)).labels, { 'example.com/kind': 'blob', extra: 'x' });
  await client.updateContentLabels(digest, { extra: '' });
  t.same((await client.contentInfo(digest)).labels, { 'example.com/kind': 'blob' }, 'empty value removes a label');

  const wrong = await kindOf(leased.writeContent('test-write-3', Buffer.from('abc'), { expectedDigest: `sha256:${'1'.repeat(64)}`, expectedSize: 3 }));
  t.match(wrong, /^failed-precondition: containerd Content.Write ref test-write-3/, 'digest mismatch refused');

  await client.deleteLease(lease.id, { sync: true });
  t.notOk((await client.listLeases()).some((l) => l.id === lease.id));
  t.match(await kindOf(client.contentInfo(digest)), /^not-found/, 'unreferenced blob collected once the lease is gone');
});

t.test('snapshots and diff: overlayfs through containerd', async (t) => {
  const lease = await client.createLease({ ttl: 600_000 });
  t.teardown(() => client.deleteLease(lease.id, { sync: true }));
  const leased = client.withLease(lease.id);
  const sn = leased.snapshots('overlayfs');
  const chain = chainIds(img.layers.map((l) => l.diffId));
  const committed = (await sn.list()).filter((s) => s.kind === 'COMMITTED').map((s) => s.name).sort();
  t.same(committed, [...chain].sort(), 'unpacked layers are committed under their chain IDs');
  const top = await sn.stat(chain[1]);
  t.equal(top.parent, chain[0]);

  const mounts = await sn.prepare('test-active', chain[1]);
  t.equal(mounts.length, 1);
  t.equal(mounts[0].type, 'overlay');
  t.ok(mounts[0].options.some((o) => o.startsWith('lowerdir=')), 'overlay has lowerdirs');
  t.same(await sn.mounts('test-active'), mounts);
  t.match(await kindOf(sn.prepare('test-active', chain[1])), /^already-exists: containerd Snapshots.Prepare overlayfs "test-active"/);
  await sn.remove('test-active');

  // Apply the first layer into a fresh snapshot through the diff service, then commit it.
  const base = await sn.prepare('test-apply', '');
  t.equal(base[0].type, 'bind');
  const layer = img.layers[0];
  const applied = await leased.diffApply({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, base);
  t.equal(applied.digest, layer.diffId, 'diff service returns the uncompressed digest');
  await sn.commit('test-applied', 'test-apply', { 'example.com/x': 'y' });
  const info = await sn.stat('test-applied');
  t.equal(info.kind, 'COMMITTED');
  t.same(info.labels, { 'example.com/x': 'y' });
  const relabeled = await sn.updateLabels('test-applied', { 'example.com/z': 'w' });
  t.same(relabeled.labels, { 'example.com/x': 'y', 'example.com/z': 'w' });
  const usage = await sn.usage('test-applied');
  t.ok(usage.size >= (await import('node:fs')).statSync('/bin/busybox').size, `usage ${usage.size} bytes covers busybox`);
  t.match(await kindOf(sn.remove(chain[0])), /^failed-precondition: /, 'a parent with children cannot be removed');
  await sn.remove('test-applied');
  t.match(await kindOf(sn.stat('test-applied')), /^not-found: containerd Snapshots.Stat overlayfs "test-applied"/);
});
