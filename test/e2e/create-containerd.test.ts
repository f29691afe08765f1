/**
 * soci create / convert / get-file against a real containerd (image imported with ctr, as
 * after `nerdctl pull`), and standalone convert of an OCI layout; the v2-converted images
 * still run with plain containerd (overlayfs + runc).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from '../helpers/containerd.js';
import { buildBusyboxImage, ociLayoutToTar } from '../helpers/images.js';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';
import { ContainerdClient } from '../../fetcher/containerd-client.js';
import type { ImageIndex, Manifest } from '../../ztoc/oci.js';
import { ANN_IMAGE_MANIFEST_DIGEST, ANN_INDEX_DIGEST, ARTIFACT_TYPE_SOCI_V2, parseSociIndex } from '../../ztoc/soci-index.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const IMAGE = 'example.com/soci/big:1';

async function bigImage(dir: string) {
  const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'usr/include'])).stdoutBuffer;
  return buildBusyboxImage(join(dir, 'layout'), { ref: IMAGE, extraLayers: [{ tarFrom: tar, compression: 'gzip' }] });
}

t.test('create, get-file and convert with containerd', async (t) => {
  const dir = await tempDirFor(t, 'soci-ctd-create-');
  const image = await bigImage(dir);
  t.ok(image.layers[1].size > 10 << 20, `big layer is above the default min layer size (${image.layers[1].size})`);
  const ctd = await startContainerd();
  t.teardown(() => ctd.stop());
  await ociLayoutToTar(image.dir, join(dir, 'image.tar'));
  const imp = await ctd.ctr(['images', 'import', join(dir, 'image.tar')]);
  t.equal(imp.code, 0, imp.stderr);
  const root = join(dir, 'root');
  const g = ['--address', ctd.address, '--namespace', ctd.namespace];

  const created = await soci(root, ['create', IMAGE], g);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout, `layer ${image.layers[0].digest} -> ztoc skipped (layer size ${image.layers[0].size} < min layer size 10485760)`);
  const m = new RegExp(`layer ${image.layers[1].digest} -> ztoc (sha256:[a-f0-9]{64})`).exec(created.stdout);
  t.ok(m, 'big layer got a ztoc');
  const ztoc = m![1];

  const ls = await soci(root, ['index', 'ls', '--json'], g);
  const rows = JSON.parse(ls.stdout) as Array<{ imageRef: string; manifestDigest: string; version: string }>;
  t.same(rows.map((r) => [r.imageRef, r.manifestDigest, r.version]), [[IMAGE, image.manifestDigest, 'v1']]);

  const out = join(dir, 'stdio.h');
  const gf = await soci(root, ['ztoc', 'get-file', ztoc, 'usr/include/stdio.h', '-o', out], g);
  t.equal(gf.code, 0, gf.stderr);
  t.equal(sha(await readFile(out)), sha(await readFile('/usr/include/stdio.h')), 'get-file from containerd content equals the file');

  const again = await soci(root, ['create', IMAGE], g);
  t.match(again.stdout, /exists \(use --force to rebuild\)/, 'a second create reuses the index');

  await t.test('convert inside containerd: SOCI-enabled image that still runs', async (t) => {
    const DST = 'example.com/soci/big:1-soci';
    const conv = await soci(root, ['convert', IMAGE, DST], g);
    t.equal(conv.code, 0, conv.stderr);
    const client = new ContainerdClient({ address: ctd.address, namespace: ctd.namespace });
    t.teardown(() => client.close());
    const record = await client.getImage(DST);
    t.equal(record.target.mediaType, 'application/vnd.oci.image.index.v1+json');
    const index = JSON.parse((await client.readContentAll(record.target.digest)).toString()) as ImageIndex;
    t.equal(index.manifests.length, 2);
    const [imgDesc, sociDesc] = index.manifests;
    t.equal(sociDesc.artifactType, ARTIFACT_TYPE_SOCI_V2);
    t.equal(sociDesc.annotations?.[ANN_IMAGE_MANIFEST_DIGEST], imgDesc.digest);
    const manifest = JSON.parse((await client.readContentAll(imgDesc.digest)).toString()) as Manifest;
    t.equal(manifest.annotations?.[ANN_INDEX_DIGEST], sociDesc.digest);
    t.same(manifest.layers.map((l) => l.digest), image.layers.map((l) => l.digest), 'layers unchanged');
    t.equal(manifest.config.digest, image.configDigest, 'config unchanged');
    const sociIndex = parseSociIndex(await client.readContentAll(sociDesc.digest));
    t.equal(sociIndex.version, 'v2');
    t.equal(sociIndex.ztocs[0].ztocDigest, ztoc, 'the ztoc built by create is reused');
    const ztocInCtd = await client.readContentAll(ztoc);
    t.equal('sha256:' + sha(ztocInCtd), ztoc, 'ztoc blob is in containerd content store');
    const info = await client.contentInfo(record.target.digest);
    t.equal(info.labels['containerd.io/gc.ref.content.m.1'], sociDesc.digest, 'gc label keeps the soci index alive');

    const run = await ctd.ctr(['run', '--rm', DST, 'conv1', 'sha256sum', '/usr/include/stdio.h']);
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout.split(/\s+/)[0], sha(await readFile('/usr/include/stdio.h')), 'converted image runs with plain containerd');
    const ls2 = await soci(root, ['index', 'ls', '--json'], g);
    t.ok((JSON.parse(ls2.stdout) as Array<{ imageRef: string; manifestDigest: string }>).some((r) => r.imageRef === DST && r.manifestDigest === imgDesc.digest));
  });
});

t.test('standalone convert (OCI layout tar -> tar), imported and run', async (t) => {
  const dir = await tempDirFor(t, 'soci-standalone-');
  const image = await bigImage(dir);
  await ociLayoutToTar(image.dir, join(dir, 'in.tar'));
  const root = join(dir, 'root');
  const conv = await soci(root, ['convert', '--oci-layout', join(dir, 'in.tar'), '--output', join(dir, 'out.tar'), IMAGE, 'example.com/soci/big:2']);
  t.equal(conv.code, 0, conv.stderr);
  t.match(conv.stdout, /converted image example.com\/soci\/big:2 -> sha256:[a-f0-9]{64}/);
  const ctd = await startContainerd();
  t.teardown(() => ctd.stop());
  const imp = await ctd.ctr(['images', 'import', join(dir, 'out.tar')]);
  t.equal(imp.code, 0, imp.stderr);
  const run = await ctd.ctr(['run', '--rm', 'example.com/soci/big:2', 'std1', 'cat', '/usr/include/errno.h']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, (await readFile('/usr/include/errno.h', 'utf8')), 'standalone-converted image runs');
});
