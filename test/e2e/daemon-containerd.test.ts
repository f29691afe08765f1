import { kindOf } from '../helpers/error-kind.js';
import t from 'tap';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ContainerdClient, SnapshotsClient } from '../../fetcher/containerd-client.js';
import { loadProtos, serviceConstructor } from '../../fetcher/proto-loader.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { buildBusyboxImage, ociLayoutToTar, sha256Digest, type BuiltImage } from '../helpers/images.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { execOk } from '../helpers/exec.js';

const REF = 'docker.io/library/soci-daemon-test:1';
const GREETING = 'hello from the second layer';

let dir: string;
let daemon: TestDaemon;
let ctd: Containerd;
let img: BuiltImage;
/** A client in namespace "default" (as a direct user of the daemon might be). */
let direct: ContainerdClient;
/** A client without namespace header, as containerd 1.6 itself calls proxy snapshotters. */
let backend: { grpc: grpc.Client; sn: SnapshotsClient };

function snapshots(): SnapshotsClient {
  return backend.sn;
}

function connectBackend(address: string): { grpc: grpc.Client; sn: SnapshotsClient } {
  const Ctor = serviceConstructor(loadProtos(), 'containerd.services.snapshots.v1.Snapshots');
  const client = new Ctor(`unix://${address}`, grpc.credentials.createInsecure());
  return { grpc: client, sn: new SnapshotsClient(client, 'soci', () => new grpc.Metadata()) };
}

async function ctrOk(args: string[]): Promise<string> {
  const res = await ctd.ctr(args);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${res.code}: ${res.stderr}\ndaemon logs:\n${daemon.logs().slice(-4000)}`);
  return res.stdout;
}

t.before(async () => {
  dir = await makeTempDir('soci-daemon-e2e-');
  img = await buildBusyboxImage(join(dir, 'layout'), {
    ref: REF,
    extraLayers: [{
      tarFrom: async (d) => {
        await execOk('sh', ['-c', `mkdir -p ${d}/data && printf '${GREETING}' > ${d}/data/greeting && head -c 200000 /dev/urandom > ${d}/data/blob`]);
      },
      compression: 'gzip',
    }],
  });
  await ociLayoutToTar(join(dir, 'layout'), join(dir, 'image.tar'));
  daemon = await startDaemon({ root: join(dir, 'root'), address: join(dir, 'run', 'soci.sock') });
  ctd = await startContainerd({ proxyPlugins: { soci: daemon.address } });
  direct = new ContainerdClient({ address: daemon.address, namespace: 'default' });
  backend = connectBackend(daemon.address);
});

t.teardown(async () => {
  direct?.close();
  backend?.grpc.close();
  await ctd?.stop().catch((e: unknown) => console.error(e));
  await daemon?.stop().catch((e: unknown) => console.error(e));
  await removeDir(dir);
});

t.test('socket: mode 0600; a second daemon on the same socket refuses to start', async (t) => {
  const { stat } = await import('node:fs/promises');
  t.equal((await stat(daemon.address)).mode & 0o777, 0o600);
  const err = await startDaemon({ root: join(dir, 'root2'), address: daemon.address }).then(
    async (d) => { await d.stop(); return 'started'; },
    (e: Error) => e.message,
  );
  t.match(err, /another process is serving on .*soci\.sock; refusing to start a second daemon/);
  t.equal((await snapshots().list()).length, 0, 'the first daemon still serves');
});

t.test('ctr images import + ctr run through the soci snapshotter (containerd unpacks)', async (t) => {
  await ctrOk(['images', 'import', '--snapshotter', 'soci', join(dir, 'image.tar')]);
  const out = await ctrOk(['run', '--rm', '--snapshotter', 'soci', REF, 'c1', '/bin/sh', '-c',
    'cat /data/greeting; echo; sha256sum /data/blob | cut -d" " -f1; echo written > /tmp/w; cat /tmp/w; ls /bin/busybox']);
  const blob = img.layers[1].tar;
  t.ok(blob.length > 0);
  const expectedBlobHash = await expectedFileHash(join(dir, 'layout'), img, 'data/blob');
  t.equal(out, `${GREETING}\n${expectedBlobHash}\nwritten\n/bin/busybox\n`);

  const ours = await snapshots().list();
  const committed = ours.filter((i) => i.kind === 'COMMITTED');
  t.equal(committed.length, 2, `one committed snapshot per layer in the daemon: ${JSON.stringify(ours)}`);
  t.ok(committed.every((i) => /^default\/\d+\/sha256:[0-9a-f]{64}$/.test(i.name)), 'containerd names backend snapshots ns/id/chainID');
  t.same(await direct.snapshots('soci').list(), [], 'a client in namespace "default" has its own (empty) key space');
});

/** The sha256 of a file in the image's top layer, computed from the layer tar on the host. */
async function expectedFileHash(layout: string, image: BuiltImage, path: string): Promise<string> {
  const x = await makeTempDir('soci-x-');
  try {
    const blob = await readFile(join(layout, 'blobs', 'sha256', image.layers[1].digest.slice(7)));
    t.equal(sha256Digest(blob), image.layers[1].digest);
    await execOk('tar', ['-xzf', join(layout, 'blobs', 'sha256', image.layers[1].digest.slice(7)), '-C', x]);
    return (await execOk('sha256sum', [join(x, path)])).stdout.split(' ')[0];
  } finally {
    await removeDir(x);
  }
}

t.test('ctr snapshots ls / info / usage / rm', async (t) => {
  const ls = await ctrOk(['snapshots', '--snapshotter', 'soci', 'ls']);
  const rows = ls.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  t.equal(rows.length, 2, ls);
  // The bottom layer has no parent, so its row has two columns.
  const bottom = rows.find((r) => r.length === 2);
  const top = rows.find((r) => r.length === 3);
  t.ok(bottom && top, ls);
  t.same(rows.map((r) => r[r.length - 1]), ['Committed', 'Committed']);
  t.equal(top![1], bottom![0], 'the top layer is a child of the bottom one');
  t.ok(rows.every((r) => /^sha256:[0-9a-f]{64}$/.test(r[0])), 'containerd shows chain IDs');
  const topKey = top![0];

  await ctrOk(['snapshots', '--snapshotter', 'soci', 'prepare', 'work-1', topKey]);
  const info = JSON.parse(await ctrOk(['snapshots', '--snapshotter', 'soci', 'info', 'work-1'])) as { Kind: string; Parent: string; Name: string };
  t.same({ kind: info.Kind, parent: info.Parent, name: info.Name }, { kind: 'Active', parent: topKey, name: 'work-1' });

  const mounts = await ctrOk(['snapshots', '--snapshotter', 'soci', 'mounts', '/mnt', 'work-1']);
  t.match(mounts, /mount -t overlay overlay \/mnt -o index=off,workdir=.*\/root\/snapshots\/\d+\/work,upperdir=.*\/root\/snapshots\/\d+\/fs,lowerdir=.*\/root\/snapshots\/\d+\/fs:.*\/root\/snapshots\/\d+\/fs/);

  // Write a known file into the active snapshot's upper dir, then check Usage counts it.
  const upper = /upperdir=([^,\s]+)/.exec(mounts)![1];
  await execOk('sh', ['-c', `head -c 100000 /dev/zero > ${upper}/f && mkdir ${upper}/d`]);
  const usage = await ctrOk(['snapshots', '--snapshotter', 'soci', 'usage', 'work-1']);
  const line = usage.trim().split('\n')[1].trim().split(/\s+/);
  // 100000 bytes of data are 25 blocks of 4 KiB, plus a 4 KiB block for each of the two directories.
  t.same(line, ['work-1', '108.0', 'KiB', '3'], 'size and inodes (upper dir, f, d)');

  const rmParent = await ctd.ctr(['snapshots', '--snapshotter', 'soci', 'rm', topKey]);
  t.not(rmParent.code, 0, 'a parent cannot be removed while it has children');
  t.match(rmParent.stderr, /failed precondition|has children|FailedPrecondition/i);
  await ctrOk(['snapshots', '--snapshotter', 'soci', 'rm', 'work-1']);
  const after = await ctrOk(['snapshots', '--snapshotter', 'soci', 'ls']);
  t.notMatch(after, /work-1/);
  // containerd removes backend snapshots in its garbage collection, without a namespace header.
  const collected = await waitUntil(async () => (await snapshots().list(['kind==active'])).length === 0, 20_000);
  t.ok(collected, 'containerd garbage collection removed the container and work-1 snapshots from the daemon');
});

t.test('bad input over gRPC: clear errors, and the daemon keeps serving', async (t) => {
  // In namespace "default": containerd's garbage collector owns namespace "" (it removes any
  // backend snapshot its own metadata does not know).
  const sn = direct.snapshots('soci');
  const NS = 'in namespace "default"';
  await sn.prepare('base-active', '', { 'containerd.io/snapshot/x': '0' });
  // Commit replaces the labels (containerd does not inherit them).
  await sn.commit('base', 'base-active', { 'containerd.io/snapshot/x': '1' });
  await sn.prepare('top-active', 'base');
  await sn.commit('top', 'top-active');

  t.equal(await kindOf(sn.prepare('x1', 'no-such-parent')),
    `not-found: containerd Snapshots.Prepare soci "x1": parent "no-such-parent" of snapshot "x1" ${NS} does not exist`);
  t.same(await sn.prepare('x1', 'top').then((m) => m[0].type), 'overlay');
  t.equal(await kindOf(sn.prepare('x1', 'top')),
    `already-exists: containerd Snapshots.Prepare soci "x1": snapshot "x1" ${NS} already exists`);
  t.equal(await kindOf(sn.prepare('x3', 'x1')),
    `invalid-argument: containerd Snapshots.Prepare soci "x3": parent "x1" of snapshot "x3" ${NS} is not committed (it is active)`);
  t.equal(await kindOf(sn.remove('base')),
    `failed-precondition: containerd Snapshots.Remove soci "base": cannot remove snapshot "base" ${NS}: it has children ("top")`);
  await sn.view('v1', 'top');
  t.equal(await kindOf(sn.commit('v1-committed', 'v1')),
    `failed-precondition: containerd Snapshots.Commit soci "v1 -> v1-committed": snapshot "v1" ${NS} is a view snapshot; only active snapshots can be committed`);
  t.equal(await kindOf(sn.commit('base', 'x1')),
    `already-exists: containerd Snapshots.Commit soci "x1 -> base": cannot commit snapshot "x1" ${NS}: snapshot "base" ${NS} already exists`);
  t.equal(await kindOf(sn.prepare('', '')), 'invalid-argument: containerd Snapshots.Prepare soci "": snapshot key must not be empty');
  t.equal(await kindOf(sn.prepare('x2', '', { '': 'v' })),
    `invalid-argument: containerd Snapshots.Prepare soci "x2": snapshot "x2" ${NS}: label key must not be empty`);
  t.match(await kindOf(sn.prepare('x2', '', { big: 'x'.repeat(100_000) })),
    /^invalid-argument: .*label "big" is 100003 bytes; key and value may have at most 4096 bytes$/);
  t.match(await kindOf(sn.prepare('x2', '', { 'a\0b': 'v' })), /^invalid-argument: .*contains a NUL byte$/);
  t.match(await kindOf(sn.list(['name=='])), /^invalid-argument: containerd Snapshots.List soci: filter "name==": expected a value at offset 6$/);
  t.match(await kindOf(sn.updateLabels('x1', {}, ['parent'])), /^invalid-argument: .*cannot update field "parent"/);
  t.match(await kindOf(sn.mounts('top')), /^failed-precondition: .*is committed; only active snapshots and views have mounts$/);
  t.match(await kindOf(sn.usage('missing')), new RegExp(`^not-found: .*snapshot "missing" ${NS} does not exist$`));
  t.equal(await kindOf(sn.stat('x2')), `not-found: containerd Snapshots.Stat soci "x2": snapshot "x2" ${NS} does not exist`,
    'refused Prepares left nothing behind');

  const other = new ContainerdClient({ address: daemon.address, namespace: 'Bad Namespace!' });
  t.match(await kindOf(other.snapshots('whatever').stat('x1')), /^invalid-argument: .*namespace "Bad Namespace!" is not a valid containerd namespace$/);
  other.close();
  t.equal((await direct.snapshots('some-other-name').stat('x1')).name, 'x1', 'the snapshotter name in requests is not checked');
  t.same(await rawUpdateWithoutInfo(), { code: grpc.status.INVALID_ARGUMENT, details: 'Update: info is required' });

  t.same((await sn.stat('x1')).parent, 'top', 'still serving after every bad request');
  t.same((await sn.list(['labels."containerd.io/snapshot/x"==1'])).map((i) => i.name), ['base']);
  for (const key of ['x1', 'v1', 'top', 'base']) await sn.remove(key);
  t.same(await sn.list(), []);
});

async function waitUntil(ok: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function rawUpdateWithoutInfo(): Promise<{ code: number; details: string }> {
  const Ctor = serviceConstructor(loadProtos(), 'containerd.services.snapshots.v1.Snapshots');
  const client = new Ctor(`unix://${daemon.address}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('containerd-namespace', 'default');
  const update = (client as unknown as Record<string, (req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void) => void>).Update;
  return new Promise((resolve) => {
    update.call(client, { snapshotter: 'soci' }, md, (err) => {
      client.close();
      resolve({ code: err?.code ?? 0, details: err?.details ?? '' });
    });
  });
}

t.test('List streams large results in chunks', async (t) => {
  const sn = new ContainerdClient({ address: daemon.address, namespace: 'bulk' });
  t.teardown(() => sn.close());
  const keys = Array.from({ length: 250 }, (_, i) => `k${String(i).padStart(3, '0')}`);
  for (const k of keys) await sn.snapshots('soci').prepare(k, '', { big: 'v'.repeat(4000) });
  const listed = await sn.snapshots('soci').list();
  t.same(listed.map((i) => i.name), keys, 'all 250 (about 1 MB of labels) arrive, in creation order');
  t.same(await sn.snapshots('soci').list(['name==k007', 'name==k249']).then((l) => l.map((i) => i.name)), ['k007', 'k249']);
  for (const k of keys) await sn.snapshots('soci').remove(k);
});

t.test('restart keeps the metadata; stale socket after kill -9 is replaced; containers still run', async (t) => {
  const address = join(dir, 'run', 'soci.sock');
  const before = (await snapshots().list()).map((i) => `${i.name}:${i.kind}`).sort();
  t.ok(before.length >= 2);
  await daemon.stop();
  t.equal(daemon.service.child.exitCode, 0, 'SIGTERM: clean exit');
  t.notOk(existsSync(address), 'SIGTERM: the socket is removed');
  daemon = await startDaemon({ root: join(dir, 'root'), address });
  await daemon.kill9();
  t.ok(existsSync(address), 'kill -9 leaves the socket file behind');
  daemon = await startDaemon({ root: join(dir, 'root'), address });
  backend.grpc.close();
  backend = connectBackend(daemon.address);
  t.same((await snapshots().list()).map((i) => `${i.name}:${i.kind}`).sort(), before);
  // containerd's proxy connection retries with a backoff of at most 3 s; until then calls fail fast.
  const reconnected = await waitUntil(async () => (await ctd.ctr(['snapshots', '--snapshotter', 'soci', 'ls'])).code === 0, 15_000);
  t.ok(reconnected, 'containerd reconnects to the restarted daemon');
  const out = await ctrOk(['run', '--rm', '--snapshotter', 'soci', REF, 'c2', '/bin/cat', '/data/greeting']);
  t.equal(out, GREETING);
});
