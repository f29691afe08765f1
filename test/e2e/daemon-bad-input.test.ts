/**
 * Bad input to the daemon, straight over its gRPC socket and through containerd (`soci image
 * rpull`): a parent that does not exist, garbage labels, an index digest that does not exist, a
 * zTOC that does not decode, a registry that is down. Each gives a gRPC code with a message that
 * names the object, and afterwards the daemon serves and has leaked no mount and no snapshot dir.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, serviceConstructor } from '../../fetcher/proto-loader.js';
import { buildSociIndex } from '../../ztoc/soci-index.js';
import { MEDIA_TYPE_OCI_MANIFEST } from '../../ztoc/oci.js';
import { chainIds } from '../../ztoc/chain-id.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { pushBlob, pushManifest } from '../helpers/registry-push.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { mountsUnder } from '../helpers/mounts.js';
import { soci } from '../helpers/soci-cli.js';
import { buildLazyImage, pushLazyImage, type LazyImage } from '../helpers/lazy-image.js';
import {
  LABEL_IMAGE_REF, LABEL_LAYER_DIGEST, LABEL_MANIFEST_DIGEST, LABEL_SOCI_INDEX_DIGEST,
} from '../../daemon/remote-preparer.js';
import { TARGET_SNAPSHOT_LABEL } from '../../daemon/snapshotter.js';

const NAMESPACE = 'bad';
const MISSING_INDEX = `sha256:${'0'.repeat(64)}`;

let dir: string;
let root: string;
let reg: Registry;
let ctd: Containerd;
let daemon: TestDaemon;
let img: LazyImage;
let client: grpc.Client;
let garbageZtoc: string;
let garbageIndex: string;

interface Answer {
  code: number;
  details: string;
  value?: unknown;
}

type UnaryMethod = (req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, value?: unknown) => void) => void;

/** One unary call on the daemon's socket, answered as code and details (0 and '' on success). */
function call(method: string, req: object): Promise<Answer> {
  const md = new grpc.Metadata();
  md.set('containerd-namespace', NAMESPACE);
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  return new Promise((resolve) => {
    fn.call(client, { snapshotter: 'soci', ...req }, md, (err, value) => {
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', value });
    });
  });
}

/** Snapshot names in `ns`; '' is where containerd's own calls land (it sends no namespace). */
function list(ns = NAMESPACE): Promise<string[]> {
  const md = new grpc.Metadata();
  if (ns !== '') md.set('containerd-namespace', ns);
  const stream = (client as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<{ info: { name: string }[] }>>).List.call(client, { snapshotter: 'soci', filters: [] }, md);
  return new Promise((resolve, reject) => {
    const names: string[] = [];
    stream.on('data', (m: { info: { name: string }[] }) => names.push(...m.info.map((i) => i.name)));
    stream.on('error', reject);
    stream.on('end', () => resolve(names));
  });
}

/** What must not change across a failed request: mounts and snapshot dirs under the root. */
async function footprint(): Promise<{ mounts: string[]; dirs: string[] }> {
  const dirs = await readdir(join(root, 'snapshots')).catch(() => [] as string[]);
  return {
    mounts: (await mountsUnder(root)).map((m) => m.mountPoint).sort(),
    dirs: dirs.filter((d) => /^\d+$/.test(d)).sort(),
  };
}

/** Runs `bad`, then checks that the daemon still answers and that nothing leaked. */
async function expectClean(t: Test, what: string, bad: () => Promise<void>): Promise<void> {
  const before = await footprint();
  const names = await list();
  await bad();
  t.same(await list(), names, `${what}: the daemon still serves List, with the same snapshots`);
  t.same((await call('Stat', { key: 'no-such-snapshot' })).code, grpc.status.NOT_FOUND, `${what}: Stat still answers`);
  // Only additions are leaks: containerd's GC may remove an earlier test's snapshot meanwhile.
  const after = await footprint();
  t.same(after.mounts.filter((m) => !before.mounts.includes(m)), [], `${what}: no mount leaked`);
  t.same(after.dirs.filter((d) => !before.dirs.includes(d)), [], `${what}: no snapshot dir leaked`);
}

function remoteLabels(over: Record<string, string> = {}): Record<string, string> {
  const layers = img.image.layers;
  return {
    [TARGET_SNAPSHOT_LABEL]: chainIds(layers.map((l) => l.diffId))[1],
    [LABEL_IMAGE_REF]: img.ref,
    [LABEL_MANIFEST_DIGEST]: img.image.manifestDigest,
    [LABEL_LAYER_DIGEST]: layers[1].digest,
    ...over,
  };
}

/** Pushes an index whose only zTOC (for the big layer) is random bytes. */
async function pushGarbageIndex(): Promise<void> {
  const garbage = randomBytes(8192);
  const repo = 'bad/app';
  garbageZtoc = await pushBlob(reg.url, repo, garbage);
  const big = img.image.layers[1];
  const index = buildSociIndex({
    version: 'v1',
    ztocs: [{ ztocDigest: garbageZtoc, ztocSize: garbage.length, layerDigest: big.digest, layerMediaType: big.mediaType, spanSize: 1 << 22, disableXattrs: false }],
    subject: { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: img.image.manifestDigest, size: img.image.manifestSize },
    buildTool: 'soci bad-input test',
  });
  garbageIndex = await pushManifest(reg.url, repo, index.digest, Buffer.from(index.bytes), MEDIA_TYPE_OCI_MANIFEST);
}

t.before(async () => {
  dir = await makeTempDir('soci-bad-input-');
  root = join(dir, 'daemon-root');
  reg = await startRegistry();
  img = await pushLazyImage(reg, dir, 'bad/app', await buildLazyImage(dir));
  await pushGarbageIndex();
  // Down means down at once: no retries against a stopped registry.
  daemon = await startDaemon({ root, address: join(dir, 'soci.sock'), config: '[http]\nmax_retries = 0\n' });
  ctd = await startContainerd({ proxyPlugins: { soci: daemon.address } });
  const Ctor = serviceConstructor(loadProtos(), 'containerd.services.snapshots.v1.Snapshots');
  client = new Ctor(`unix://${daemon.address}`, grpc.credentials.createInsecure());
});

t.teardown(async () => {
  client?.close();
  await ctd?.stop().catch((e: unknown) => console.error(e));
  await daemon?.stop().catch((e: unknown) => console.error(e));
  await reg?.stop().catch((e: unknown) => console.error(e));
  await removeDir(dir);
});

t.test('a parent that does not exist: NOT_FOUND naming it', async (t) => {
  await expectClean(t, 'missing parent', async () => {
    const plain = await call('Prepare', { key: 'p1', parent: 'no-such-parent' });
    t.equal(plain.code, grpc.status.NOT_FOUND);
    t.match(plain.details, /"no-such-parent"/);
    const remote = await call('Prepare', { key: 'p2', parent: 'no-such-parent', labels: remoteLabels() });
    t.equal(remote.code, grpc.status.NOT_FOUND, remote.details);
    t.match(remote.details, /"no-such-parent"/);
  });
});

t.test('garbage labels: INVALID_ARGUMENT before any registry work; oversized messages refused by gRPC', async (t) => {
  const logStart = (await reg.accessLog()).length;
  await expectClean(t, 'garbage labels', async () => {
    const huge = await call('Prepare', { key: 'g1', labels: remoteLabels({ 'x-huge': 'x'.repeat(5000) }) });
    t.equal(huge.code, grpc.status.INVALID_ARGUMENT);
    t.match(huge.details, /label "x-huge" is 5006 bytes; key and value may have at most 4096 bytes/);
    const nul = await call('Prepare', { key: 'g2', labels: remoteLabels({ [LABEL_IMAGE_REF]: `${img.ref}\0evil` }) });
    t.equal(nul.code, grpc.status.INVALID_ARGUMENT);
    t.match(nul.details, `label "${LABEL_IMAGE_REF}" contains a NUL byte`);
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v'.repeat(4000)]));
    const total = await call('Prepare', { key: 'g3', labels: many });
    t.equal(total.code, grpc.status.INVALID_ARGUMENT);
    t.match(total.details, /labels total \d+ bytes; at most 65536 bytes allowed/);
    const badRef = await call('Prepare', { key: 'g4', labels: remoteLabels({ [LABEL_IMAGE_REF]: 'Not A Reference' }) });
    t.equal(badRef.code, grpc.status.INVALID_ARGUMENT);
    t.match(badRef.details, /Not A Reference/);
    const tooBig = await call('Prepare', { key: 'g5', labels: { big: 'x'.repeat(17 << 20) } });
    t.equal(tooBig.code, grpc.status.RESOURCE_EXHAUSTED, tooBig.details);
  });
  const strayLayer = await call('Prepare', { key: 'g6', labels: remoteLabels({ [LABEL_LAYER_DIGEST]: MISSING_INDEX, [LABEL_SOCI_INDEX_DIGEST]: garbageIndex }) });
  t.equal(strayLayer.code, grpc.status.INVALID_ARGUMENT);
  t.match(strayLayer.details, `layer ${MISSING_INDEX} is not in image manifest ${img.image.manifestDigest}`);
  t.same((await reg.accessLog()).slice(logStart).filter((e) => e.path.includes('/blobs/')).map((e) => e.path), [],
    'no layer or zTOC blob was fetched for bad labels');
});

t.test('an index digest that does not exist: NOT_FOUND naming the digest', async (t) => {
  await expectClean(t, 'missing index', async () => {
    const res = await call('Prepare', { key: 'i1', labels: remoteLabels({ [LABEL_SOCI_INDEX_DIGEST]: MISSING_INDEX }) });
    t.equal(res.code, grpc.status.NOT_FOUND);
    t.match(res.details, `soci index ${MISSING_INDEX} not found in ${reg.host}/bad/app`);
    const rp = await soci(img.builder, ['image', 'rpull', '--soci-index-digest', MISSING_INDEX, img.ref], ['--address', ctd.address]);
    t.not(rp.code, 0, 'rpull fails');
    t.match(rp.stderr, `soci index ${MISSING_INDEX} not found`);
  });
});

t.test('a zTOC that does not decode: INVALID_ARGUMENT naming the zTOC', async (t) => {
  await expectClean(t, 'garbage ztoc', async () => {
    const res = await call('Prepare', { key: 'z1', labels: remoteLabels({ [LABEL_SOCI_INDEX_DIGEST]: garbageIndex }) });
    t.equal(res.code, grpc.status.INVALID_ARGUMENT, res.details);
    t.match(res.details, `ztoc ${garbageZtoc}`);
  });
  const before = await footprint();
  const committed = await list('');
  const rp = await soci(img.builder, ['image', 'rpull', '--soci-index-digest', garbageIndex, img.ref], ['--address', ctd.address]);
  t.not(rp.code, 0, 'rpull fails');
  t.match(rp.stderr, `ztoc ${garbageZtoc}`);
  // The busybox layer has no zTOC in that index: it is unpacked and committed before the big one
  // fails, unless an earlier pull of the same image left it there already.
  // containerd removes its own snapshots of a failed unpack after rpull has returned: let that
  // settle, reading both the snapshot list and the dirs again each time.
  let added = (await list('')).filter((n) => !committed.includes(n));
  let after = await footprint();
  for (let i = 0; i < 50 && after.dirs.length !== before.dirs.length + added.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    added = (await list('')).filter((n) => !committed.includes(n));
    after = await footprint();
  }
  t.ok(added.length <= 1, `at most the layer below the failed one was committed: ${added.join(', ')}`);
  t.same(after.mounts, before.mounts, 'no FUSE mount leaked');
  t.equal(after.dirs.length, before.dirs.length + added.length, 'one snapshot dir per snapshot, none for the failed layer');
  t.match(daemon.logs(), /layer could not be prepared/);
});

t.test('the daemon still pulls lazily after all that', async (t) => {
  const rp = await soci(img.builder, ['image', 'rpull', img.ref], ['--address', ctd.address]);
  t.equal(rp.code, 0, rp.stderr);
  const modes = rp.stdout.split('\n').filter((l) => l.startsWith('layer ')).map((l) => l.split(/\s+/)[2]);
  t.same(modes, ['local', 'lazy', 'local']);
  const out = await ctd.ctr(['run', '--rm', '--snapshotter', 'soci', img.ref, 'ok1', 'cat', '/etc/ssl/openssl.cnf']);
  t.equal(out.code, 0, out.stderr);
  const { readFile } = await import('node:fs/promises');
  t.equal(out.stdout, await readFile('/etc/ssl/openssl.cnf', 'utf8'));
});

t.test('registry down: UNAVAILABLE with an explicit index; without one containerd unpacks', async (t) => {
  // Another manifest digest, so that nothing the daemon learned above is reused.
  const other = `sha256:${'1'.repeat(64)}`;
  await reg.stop();
  await expectClean(t, 'registry down', async () => {
    const res = await call('Prepare', { key: 'd1', labels: remoteLabels({ [LABEL_MANIFEST_DIGEST]: other, [LABEL_SOCI_INDEX_DIGEST]: garbageIndex }) });
    t.equal(res.code, grpc.status.UNAVAILABLE, res.details);
    t.match(res.details, reg.host);
    const degraded = await call('Prepare', { key: 'd2', labels: remoteLabels({ [LABEL_MANIFEST_DIGEST]: other }) });
    t.equal(degraded.code, grpc.status.OK, `no explicit index: a plain active snapshot (${degraded.details})`);
    const mounts = (degraded.value as { mounts: { type: string }[] }).mounts;
    t.same(mounts.map((m) => m.type), ['bind'], 'mounts for containerd to unpack into');
    t.equal((await call('Remove', { key: 'd2' })).code, grpc.status.OK);
  });
  t.match(daemon.logs(), /soci index lookup failed; containerd unpacks the layer/);
});
