/**
 * The product end to end: an image with a SOCI index in docker-registry, soci-snapshotter-grpc
 * as containerd's proxy snapshotter, `soci image rpull` + `ctr run --snapshotter soci`.
 * v1 index (referrers fallback), v2 (SOCI-enabled image via convert), no index, sparse index.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { pushImage } from '../helpers/registry-push.js';
import { buildBusyboxImage, type BuiltImage } from '../helpers/images.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';
import { walkImageRootfs } from '../helpers/rootfs-compare.js';
import { chainIds } from '../../ztoc/chain-id.js';
import { readTar } from '../../ztoc/tar-reader.js';
import { cleanPath } from '../../ztoc/ztoc-info.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface World {
  dir: string;
  reg: Registry;
  ctd: Containerd;
  daemon: TestDaemon;
  image: BuiltImage;
  builder: string;
}

async function world(t: Test): Promise<World> {
  const dir = await tempDirFor(t, 'soci-lazy-');
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const big = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'usr/include'])).stdoutBuffer;
  const image = await buildBusyboxImage(join(dir, 'layout'), {
    extraLayers: [
      { tarFrom: big, compression: 'gzip' },
      { tarFrom: ['/etc/ssl'], compression: 'gzip' },
    ],
  });
  const daemon = await startDaemon({ root: join(dir, 'daemon-root'), address: join(dir, 'soci.sock') });
  t.teardown(() => daemon.stop());
  const ctd = await startContainerd({ proxyPlugins: { soci: daemon.address } });
  t.teardown(() => ctd.stop());
  return { dir, reg, ctd, daemon, image, builder: join(dir, 'builder') };
}

/**
 * Directories that some layer adds entries to without listing the directory itself: containerd's
 * applier leaves them with the time of extraction, so their mtime cannot be compared.
 */
function implicitDirs(image: BuiltImage, tree: Record<string, { type: string }>): string[] {
  const out = new Set<string>();
  for (const l of image.layers) {
    const names = readTar(l.tar).entries.map((e) => cleanPath(e.name));
    const listed = new Set(names);
    for (const n of names) {
      for (let p = n; p.includes('/'); ) {
        p = p.slice(0, p.lastIndexOf('/'));
        if (!listed.has(p)) out.add(p);
      }
    }
  }
  return [...out].filter((p) => tree[p]?.type === 'dir');
}

function diffIds(image: BuiltImage): string[] {
  return image.layers.map((l) => l.diffId);
}

async function runAndCompare(t: Test, w: World, ref: string, expectModes: string[]): Promise<void> {
  const bigLayer = w.image.layers[1];
  const logStart = (await w.reg.accessLog()).length;
  const pull = await soci(w.builder, ['image', 'rpull', ref], ['--address', w.ctd.address]);
  t.equal(pull.code, 0, pull.stderr);
  const modes = pull.stdout.split('\n').filter((l) => l.startsWith('layer ')).map((l) => l.split(/\s+/)[2]);
  t.same(modes, expectModes, `per-layer outcome:\n${pull.stdout}`);
  const run = await w.ctd.ctr(['run', '--rm', '--snapshotter', 'soci', ref, `c${Date.now()}`, 'sha256sum', '/usr/include/stdio.h']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout.split(/\s+/)[0], sha(await readFile('/usr/include/stdio.h')), 'the container reads the right bytes');
  const served = (await w.reg.accessLog())
    .slice(logStart)
    .filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${bigLayer.digest}`))
    .reduce((n, e) => n + e.bytes, 0);
  if (expectModes[1] === 'lazy') t.ok(served < bigLayer.size / 3, `registry served ${served} of ${bigLayer.size} bytes of the big layer before the output`);
  else t.ok(served >= bigLayer.size, 'without an index the big layer is downloaded whole');
  // zTOCs are prefetched for the whole image at the first layer and shared with each layer's Prepare.
  const layerBlobs = new Set(w.image.layers.map((l) => l.digest));
  const otherGets = new Map<string, number>();
  for (const e of (await w.reg.accessLog()).slice(logStart)) {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(e.path);
    if (e.method === 'GET' && m && !layerBlobs.has(m[1])) otherGets.set(m[1], (otherGets.get(m[1]) ?? 0) + 1);
  }
  t.same([...otherGets.values()].filter((n) => n !== 1), [], `every other blob (config, zTOCs) is fetched once: ${JSON.stringify([...otherGets])}`);
}

t.test('v1 index through the referrers fallback: lazy pull and run, rootfs equals overlayfs', async (t) => {
  const w = await world(t);
  await pushImage(w.reg.url, 'lazy/v1', 'latest', w.image);
  const ref = `${w.reg.host}/lazy/v1:latest`;
  t.equal((await soci(w.builder, ['create', ref], ['--address', '/nonexistent'])).code, 0);
  t.equal((await soci(w.builder, ['push', ref])).code, 0);
  // A node has no local copy of the index: the daemon must find it in the registry.
  await soci(w.builder, ['index', 'rm', '--ref', ref]);
  await runAndCompare(t, w, ref, ['local', 'lazy', 'local']);
  const top = chainIds(diffIds(w.image)).at(-1)!;
  const lazyTree = await walkImageRootfs(w.ctd, 'soci', top, w.dir);
  const pulled = await w.ctd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref]);
  t.equal(pulled.code, 0, pulled.stderr);
  const plainTree = await walkImageRootfs(w.ctd, 'overlayfs', top, w.dir);
  t.ok(Object.keys(plainTree).length > 1000, `${Object.keys(plainTree).length} paths`);
  // Directories no layer lists get the extraction time from containerd's applier: not comparable.
  for (const path of implicitDirs(w.image, plainTree)) {
    for (const tree of [lazyTree, plainTree]) if (tree[path]) tree[path] = { ...tree[path], mtime_ns: '' };
  }
  t.same(lazyTree, plainTree, 'root filesystem through soci equals containerd overlayfs');
  const logs = w.daemon.logs();
  t.match(logs, /mounted lazily/);
  t.match(logs, /unpacked by the snapshotter/);
});

t.test('v2 SOCI-enabled image (convert) and an image without an index', async (t) => {
  const w = await world(t);
  await pushImage(w.reg.url, 'lazy/v2', 'src', w.image);
  const src = `${w.reg.host}/lazy/v2:src`;
  const dst = `${w.reg.host}/lazy/v2:soci`;
  const conv = await soci(w.builder, ['convert', src, dst], ['--address', '/nonexistent']);
  t.equal(conv.code, 0, conv.stderr);
  await soci(w.builder, ['index', 'rm', '--ref', dst]);
  await runAndCompare(t, w, dst, ['local', 'lazy', 'local']);
  // Other layers than above, so that nothing is shared with the snapshots already there.
  const other = await buildBusyboxImage(join(w.dir, 'other'), {
    extraLayers: [
      { tarFrom: (await execOk('tar', ['-C', '/', '--sort=name', '--owner=7', '-cf', '-', 'usr/include'])).stdoutBuffer, compression: 'gzip' },
      { tarFrom: ['/etc/ssl', '/etc/hostname'], compression: 'gzip' },
    ],
  });
  await pushImage(w.reg.url, 'plain/app', 'v1', other);
  await runAndCompare(t, { ...w, image: other }, `${w.reg.host}/plain/app:v1`, ['containerd', 'containerd', 'containerd']);
});
