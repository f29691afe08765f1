/**
 * The Kubernetes path: containerd's CRI plugin with `snapshotter = "soci"` and snapshot
 * annotations on pulls lazily when the kubelet's call, CRI ImageService.PullImage, arrives over
 * containerd's socket; the image then runs in containerd's k8s.io namespace.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, serviceConstructor } from '../../fetcher/proto-loader.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { mountsUnder } from '../helpers/mounts.js';
import { blobBytesServed, buildLazyImage, logRecords, pushLazyImage, type LazyImage } from '../helpers/lazy-image.js';

const CRI_NAMESPACE = 'k8s.io';
const FILE = '/usr/include/stdio.h';

let dir: string;
let reg: Registry;
let ctd: Containerd;
let daemon: TestDaemon;
let img: LazyImage;
let cri: grpc.Client;

t.before(async () => {
  dir = await makeTempDir('soci-cri-');
  reg = await startRegistry();
  img = await pushLazyImage(reg, dir, 'cri/app', await buildLazyImage(dir));
  daemon = await startDaemon({ root: join(dir, 'daemon-root'), address: join(dir, 'soci.sock') });
  // No registry config: containerd 1.6's CRI plugin speaks plain HTTP to localhost registries by itself.
  ctd = await startContainerd({ proxyPlugins: { soci: daemon.address }, criSnapshotter: 'soci' });
  const Ctor = serviceConstructor(loadProtos(), 'runtime.v1.ImageService');
  cri = new Ctor(`unix://${ctd.address}`, grpc.credentials.createInsecure());
});

t.teardown(async () => {
  cri?.close();
  await ctd?.stop().catch((e: unknown) => console.error(e));
  await daemon?.stop().catch((e: unknown) => console.error(e));
  await reg?.stop().catch((e: unknown) => console.error(e));
  await removeDir(dir);
});

type Unary = (req: object, cb: (err: grpc.ServiceError | null, res?: Record<string, unknown>) => void) => void;

function criCall(method: string, req: object): Promise<Record<string, unknown>> {
  const fn = (cri as unknown as Record<string, Unary>)[method];
  return new Promise((resolve, reject) => {
    fn.call(cri, req, (err, res) => (err ? reject(new Error(`CRI ${method}: ${err.code} ${err.details}`)) : resolve(res ?? {})));
  });
}

t.test('CRI PullImage pulls lazily through the soci snapshotter; the image runs in k8s.io', async (t) => {
  const big = img.image.layers[1];
  const logStart = (await reg.accessLog()).length;
  const res = await criCall('PullImage', { image: { image: img.ref } });
  t.equal(res.image_ref, `sha256:${img.image.configDigest.slice('sha256:'.length)}`, 'CRI answers with the image id (config digest)');

  const outcomes = Object.fromEntries(['mounted lazily', 'unpacked by the snapshotter', 'left to containerd'].map((m) =>
    [m, logRecords(daemon.logs(), `layer ${m}`).map((r) => r.layer)]));
  t.same(outcomes, {
    'mounted lazily': [big.digest],
    'unpacked by the snapshotter': [img.image.layers[0].digest, img.image.layers[2].digest],
    'left to containerd': [],
  }, 'the big layer is mounted lazily, the small ones unpacked by the daemon');
  const lazy = logRecords(daemon.logs(), 'layer mounted lazily')[0];
  t.equal(lazy?.image, img.ref, 'CRI passed the image reference in the snapshot labels');
  const served = blobBytesServed((await reg.accessLog()), big.digest, logStart);
  t.ok(served < big.size / 10, `registry served ${served} of ${big.size} bytes of the big layer for the pull`);

  const images = await ctd.ctr(['images', 'ls', '-q'], { namespace: CRI_NAMESPACE });
  t.ok(images.stdout.split('\n').includes(img.ref), `the image is in namespace ${CRI_NAMESPACE}`);
  const run = await ctd.ctr(['run', '--rm', '--snapshotter', 'soci', img.ref, 'cri-c1', 'sha256sum', FILE], { namespace: CRI_NAMESPACE });
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout.split(/\s+/)[0], createHash('sha256').update(await readFile(FILE)).digest('hex'), 'the container reads the right bytes');
  const afterRun = blobBytesServed((await reg.accessLog()), big.digest, logStart);
  t.ok(afterRun < big.size / 3, `registry served ${afterRun} of ${big.size} bytes of the big layer by the time of the output`);

  const status = await criCall('ImageStatus', { image: { image: img.ref } });
  const image = status.image as { repo_tags?: string[] } | null;
  t.same(image?.repo_tags, [img.ref], 'CRI ImageStatus knows the image');

  // The kubelet's image GC: containerd removes the backend snapshots without a namespace header.
  await criCall('RemoveImage', { image: { image: img.ref } });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await mountsUnder(daemon.root)).length > 0) await new Promise((r) => setTimeout(r, 250));
  t.same((await mountsUnder(daemon.root)).map((m) => m.mountPoint), [], 'containerd GC removed the lazy layer: unmounted');
  const dirs = (await readdir(join(daemon.root, 'snapshots'))).filter((d) => /^\d+$/.test(d));
  t.same(dirs, [], 'and every snapshot dir is gone');
});
