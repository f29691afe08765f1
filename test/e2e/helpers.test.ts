import t from 'tap';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fetch } from 'undici';
import { startRegistry, htpasswdLine } from '../helpers/registry.js';
import { pushBlob, pushImage } from '../helpers/registry-push.js';
import { startContainerd } from '../helpers/containerd.js';
import { buildBusyboxImage, buildOciLayout, ociLayoutToTar, sha256Digest } from '../helpers/images.js';
import { tempDirFor } from '../helpers/tmp.js';
import { pidAlive } from '../helpers/process.js';
import { mountsUnder } from '../helpers/mounts.js';
import { execOk } from '../helpers/exec.js';


t.test('registry: starts, answers /v2/, stores a pushed blob, stops cleanly', async (t) => {
  const reg = await startRegistry();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : reg.stop()));
  const v2 = await fetch(`${reg.url}/v2/`);
  t.equal(v2.status, 200);
  t.equal(await v2.text(), '{}');

  const data = Buffer.from('hello registry blob\n'.repeat(1000));
  const digest = await pushBlob(reg.url, 'test/blob', data);
  t.equal(digest, sha256Digest(data));
  const got = await fetch(`${reg.url}/v2/test/blob/blobs/${digest}`);
  t.equal(got.status, 200);
  const body = Buffer.from(await got.arrayBuffer());
  t.equal(sha256Digest(body), digest, 'blob served byte-identical');

  const ranged = await fetch(`${reg.url}/v2/test/blob/blobs/${digest}`, { headers: { range: 'bytes=20-39' } });
  t.equal(ranged.status, 206);
  t.equal(Buffer.from(await ranged.arrayBuffer()).toString(), data.subarray(20, 40).toString());

  const served = (await reg.accessLog()).filter((e) => e.method === 'GET' && e.path === `/v2/test/blob/blobs/${digest}`);
  t.same(served.map((e) => [e.status, e.bytes]), [[200, data.length], [206, 20]], 'access log counts bytes served');

  const root = reg.root;
  await reg.stop();
  stopped = true;
  t.notOk(existsSync(root), 'temp dir removed');
  const after = await fetch(`${reg.url}/v2/`).then(() => 'answered', () => 'refused');
  t.equal(after, 'refused', 'no process listens after stop');
});

t.test('registry: htpasswd auth', async (t) => {
  const reg = await startRegistry({ htpasswd: await htpasswdLine('alice', 's3cret') });
  t.teardown(() => reg.stop());
  t.equal((await fetch(`${reg.url}/v2/`)).status, 401);
  const auth = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
  t.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: auth } })).status, 200);
  const digest = await pushBlob(reg.url, 'private/x', Buffer.from('secret'), { headers: { authorization: auth } });
  t.equal(digest, sha256Digest(Buffer.from('secret')));
});

t.test('images: OCI layout is well formed', async (t) => {
  const dir = await tempDirFor(t);
  const img = await buildOciLayout(join(dir, 'layout'), {
    layers: [
      { tarFrom: async (d) => { await execOk('sh', ['-c', `mkdir -p ${d}/a && echo one > ${d}/a/f`]); }, compression: 'gzip' },
      { tarFrom: async (d) => { await execOk('sh', ['-c', `echo two > ${d}/g`]); }, compression: 'zstd' },
      { tarFrom: async (d) => { await execOk('sh', ['-c', `echo three > ${d}/h`]); }, compression: 'none' },
    ],
    config: { cmd: ['/bin/true'] },
    ref: 'example.com/x:1',
  });
  const index = JSON.parse(await readFile(join(dir, 'layout', 'index.json'), 'utf8'));
  t.equal(index.manifests[0].digest, img.manifestDigest);
  t.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'example.com/x:1');
  const config = JSON.parse(img.config.toString());
  t.same(config.rootfs.diff_ids, img.layers.map((l) => sha256Digest(l.tar)));
  t.equal(config.architecture, 'amd64');
  t.same(img.layers.map((l) => l.mediaType), [
    'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar',
  ]);
  for (const l of img.layers) {
    const onDisk = await readFile(join(dir, 'layout', 'blobs', 'sha256', l.digest.slice(7)));
    t.equal(sha256Digest(onDisk), l.digest);
  }
  const zstdOut = await execOk('zstd', ['-d', '-c', '-q'], { input: img.layers[1].blob });
  t.equal(sha256Digest(zstdOut.stdoutBuffer), img.layers[1].diffId, 'zstd layer decompresses to its diff_id');
  const listing = await execOk('tar', ['-tvf', '-'], { input: img.layers[0].tar });
  t.match(listing.stdout, /0\/0\s+4 1970-01-01 00:00 \.\/a\/f\n/, 'deterministic owner and mtime');
});

t.test('containerd: import and run a busybox image, stop leaves nothing', async (t) => {
  const dir = await tempDirFor(t);
  const img = await buildBusyboxImage(join(dir, 'layout'), {
    ref: 'docker.io/library/busybox-test:1',
    extraLayers: [{ tarFrom: async (d) => { await execOk('sh', ['-c', `mkdir -p ${d}/etc && echo from-layer-2 > ${d}/etc/motd`]); }, compression: 'gzip' }],
  });
  await ociLayoutToTar(join(dir, 'layout'), join(dir, 'image.tar'));

  const ctd = await startContainerd();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : ctd.stop()));
  const imported = await ctd.ctr(['images', 'import', join(dir, 'image.tar')]);
  t.equal(imported.code, 0, imported.stderr);
  const list = await ctd.ctr(['images', 'ls', '-q']);
  t.same(list.stdout.trim().split('\n'), ['docker.io/library/busybox-test:1']);

  const run = await ctd.ctr(['run', '--rm', 'docker.io/library/busybox-test:1', 'c1',
    'sh', '-c', 'echo hello; cat /etc/motd; sha256sum /bin/busybox']);
  t.equal(run.code, 0, run.stderr);
  const busyboxHash = sha256Digest(await readFile('/bin/busybox')).slice(7);
  t.equal(run.stdout, `hello\nfrom-layer-2\n${busyboxHash}  /bin/busybox\n`);
  t.equal(img.layers.length, 2);

  const snapshots = await ctd.ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls']);
  t.equal(snapshots.stdout.trim().split('\n').length, 3, 'two committed layer snapshots (+ header)');

  // A long-running task left behind must not survive stop().
  const bg = await ctd.ctr(['run', '-d', 'docker.io/library/busybox-test:1', 'c2', 'sleep', '300']);
  t.equal(bg.code, 0, bg.stderr);
  const tasks = await ctd.ctr(['tasks', 'ls']);
  const pid = Number(tasks.stdout.split('\n')[1]?.split(/\s+/)[1]);
  t.ok(pid > 0 && pidAlive(pid), 'container process runs');

  const { root, address } = ctd;
  const base = address.replace(/\/containerd\.sock$/, '');
  await ctd.stop();
  stopped = true;
  t.notOk(pidAlive(pid), 'container process gone');
  t.same(await mountsUnder(base), [], 'no mounts left');
  t.notOk(existsSync(root), 'temp dir removed');
});

t.test('registry + busybox image push round trip', async (t) => {
  const dir = await tempDirFor(t);
  const img = await buildBusyboxImage(join(dir, 'layout'));
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const digest = await pushImage(reg.url, 'library/busybox', 'latest', img);
  t.equal(digest, img.manifestDigest);
  const res = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  t.equal(res.status, 200);
  t.equal(res.headers.get('docker-content-digest'), img.manifestDigest);
  t.equal(sha256Digest(Buffer.from(await res.arrayBuffer())), img.manifestDigest);
});
