/**
 * `soci create` straight from a registry (no containerd), `soci push`, then what a plain
 * HTTP client sees: the index through the `sha256-<hex>` referrers fallback tag, manifests
 * byte-identical to the local ones, zTOC blobs present; pushing twice changes nothing.
 * Also `soci convert` registry -> registry.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetch } from 'undici';
import { startRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/registry-push.js';
import { buildBusyboxImage } from '../helpers/images.js';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';
import type { ImageIndex, Manifest } from '../../ztoc/oci.js';
import { ARTIFACT_TYPE_SOCI_V1, ARTIFACT_TYPE_SOCI_V2, ANN_INDEX_DIGEST } from '../../ztoc/soci-index.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const NO_CONTAINERD = ['--address', '/nonexistent/containerd.sock'];

t.test('create from registry, push, discover through the fallback tag', async (t) => {
  const dir = await tempDirFor(t, 'soci-push-');
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'usr/include'])).stdoutBuffer;
  const image = await buildBusyboxImage(join(dir, 'layout'), { extraLayers: [{ tarFrom: tar, compression: 'gzip' }] });
  await pushImage(reg.url, 'team/app', 'v1', image);
  const ref = `${reg.host}/team/app:v1`;
  const root = join(dir, 'root');

  const before = (await reg.accessLog()).length;
  const created = await soci(root, ['create', ref], NO_CONTAINERD);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stderr, /is not in containerd .* reading it from its registry/);
  const ztoc = /-> ztoc (sha256:[a-f0-9]{64})/.exec(created.stdout)![1];
  const index = /soci index (sha256:[a-f0-9]{64})/.exec(created.stdout)![1];
  const layerGets = (await reg.accessLog()).slice(before).filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
  t.equal(layerGets.filter((e) => e.path.endsWith(image.layers[1].digest)).length, 1, 'the big layer is read once');

  const pushed = await soci(root, ['push', ref]);
  t.equal(pushed.code, 0, pushed.stderr);
  t.match(pushed.stdout, `pushed soci index ${index}`);
  t.match(pushed.stdout, /referrers: updated/);

  const fallback = await fetch(`${reg.url}/v2/team/app/manifests/sha256-${image.manifestDigest.slice(7)}`, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
  });
  t.equal(fallback.status, 200);
  const refIndex = (await fallback.json()) as ImageIndex;
  t.equal(refIndex.manifests.length, 1);
  t.equal(refIndex.manifests[0].digest, index);
  t.equal(refIndex.manifests[0].artifactType, ARTIFACT_TYPE_SOCI_V1);

  const remote = Buffer.from(await (await fetch(`${reg.url}/v2/team/app/manifests/${index}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer());
  const local = await readFile(join(root, 'content', 'blobs', 'sha256', index.slice(7)));
  t.equal(sha(remote), sha(local), 'index manifest byte-identical');
  const m = JSON.parse(local.toString()) as Manifest;
  t.equal(m.subject?.digest, image.manifestDigest);
  for (const l of m.layers) {
    const blob = await fetch(`${reg.url}/v2/team/app/blobs/${l.digest}`);
    t.equal(blob.status, 200);
    t.equal('sha256:' + sha(Buffer.from(await blob.arrayBuffer())), l.digest, `ztoc ${l.digest} present`);
  }
  t.equal(m.layers[0].digest, ztoc);

  const puts = async (): Promise<number> => (await reg.accessLog()).filter((e) => e.method === 'PUT').length;
  const putsBefore = await puts();
  const again = await soci(root, ['push', ref]);
  t.equal(again.code, 0, again.stderr);
  const refIndex2 = (await (await fetch(`${reg.url}/v2/team/app/manifests/sha256-${image.manifestDigest.slice(7)}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })).json()) as ImageIndex;
  t.same(refIndex2, refIndex, 'second push: no duplicate referrer');
  t.equal((await puts()) - putsBefore, 1, 'second push uploads no blob again (only the idempotent manifest PUT)');

  await t.test('convert registry -> registry', async (t) => {
    const dst = `${reg.host}/team/app:v1-soci`;
    const conv = await soci(root, ['convert', ref, dst], NO_CONTAINERD);
    t.equal(conv.code, 0, conv.stderr);
    const res = await fetch(`${reg.url}/v2/team/app/manifests/v1-soci`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    t.equal(res.status, 200);
    const idx = (await res.json()) as ImageIndex;
    t.equal(idx.manifests.length, 2);
    t.equal(idx.manifests[1].artifactType, ARTIFACT_TYPE_SOCI_V2);
    const man = (await (await fetch(`${reg.url}/v2/team/app/manifests/${idx.manifests[0].digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as Manifest;
    t.equal(man.annotations?.[ANN_INDEX_DIGEST], idx.manifests[1].digest);
    t.same(man.layers.map((l) => l.digest), image.layers.map((l) => l.digest));
  });

  await t.test('bad input: unknown image, registry down', async (t) => {
    const r1 = await soci(root, ['create', `${reg.host}/team/nope:v1`], NO_CONTAINERD);
    t.not(r1.code, 0);
    t.match(r1.stderr.trim().split('\n').at(-1), /^soci: .*not found/i);
    const r2 = await soci(root, ['push', '127.0.0.1:1/team/app:v1']);
    t.not(r2.code, 0);
    t.match(r2.stderr.trim(), /^soci: no soci index for image/);
  });
});
