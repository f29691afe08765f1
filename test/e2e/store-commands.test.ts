/** soci index rm, rebuild-db (artifacts copied in from elsewhere), ztoc ls filters. */
import t from 'tap';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOciLayout } from '../helpers/images.js';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';

interface IndexRow {
  digest: string;
  imageRef: string;
  manifestDigest: string;
  platform: string;
  version: string;
}

t.test('index rm and rebuild-db', async (t) => {
  const dir = await tempDirFor(t, 'soci-store-cmds-');
  const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'etc'])).stdoutBuffer;
  const layout = join(dir, 'layout');
  const image = await buildOciLayout(layout, { layers: [{ tarFrom: tar, compression: 'gzip' }], config: {}, ref: 'example.com/a:1' });
  const root = join(dir, 'root');
  const args = ['--oci-layout', layout, '--min-layer-size', '0', '--span-size', '256KiB'];
  t.equal((await soci(root, ['create', ...args, 'example.com/a:1'])).code, 0);
  const v2 = await soci(root, ['convert', ...args, '--output', join(dir, 'out'), 'example.com/a:1', 'example.com/a:1-soci']);
  t.equal(v2.code, 0, v2.stderr);
  const rows = JSON.parse((await soci(root, ['index', 'ls', '--json'])).stdout) as IndexRow[];
  t.equal(rows.length, 2);
  t.same(rows.map((r) => r.version).sort(), ['v1', 'v2']);
  const v1 = rows.find((r) => r.version === 'v1')!;
  const v2row = rows.find((r) => r.version === 'v2')!;
  t.equal(v1.manifestDigest, image.manifestDigest);
  t.not(v2row.manifestDigest, image.manifestDigest, 'the v2 index belongs to the rewritten manifest');

  await t.test('rebuild-db from blobs copied into a fresh root', async (t) => {
    const root2 = join(dir, 'root2');
    await cp(join(root, 'content'), join(root2, 'content'), { recursive: true });
    // The converted layout holds the SOCI-enabled image index that ties the v2 index to its manifest.
    await cp(join(dir, 'out', 'blobs', 'sha256'), join(root2, 'content', 'blobs', 'sha256'), { recursive: true });
    const r = await soci(root2, ['rebuild-db']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /rebuilt artifact db: 2 index\(es\), 1 ztoc\(s\)/);
    const got = JSON.parse((await soci(root2, ['index', 'ls', '--json'])).stdout) as IndexRow[];
    const byVersion = Object.fromEntries(got.map((g) => [g.version, g]));
    t.equal(byVersion.v1.manifestDigest, v1.manifestDigest, 'v1: manifest from the subject');
    t.equal(byVersion.v2.manifestDigest, v2row.manifestDigest, 'v2: manifest from the image index annotation');
    t.equal(byVersion.v2.platform, 'linux/amd64');
    const ztocs = JSON.parse((await soci(root2, ['ztoc', 'ls', '--json'])).stdout) as Array<{ layerDigest: string }>;
    t.same(ztocs.map((z) => z.layerDigest), [image.layers[0].digest]);
  });

  await t.test('index rm keeps zTOCs another index uses, removes the last user\'s', async (t) => {
    const r1 = await soci(root, ['index', 'rm', v1.digest]);
    t.equal(r1.code, 0, r1.stderr);
    t.equal(r1.stdout.trim(), `removed soci index ${v1.digest}`);
    t.equal(JSON.parse((await soci(root, ['ztoc', 'ls', '--json'])).stdout).length, 1, 'ztoc still used by the v2 index');
    const r2 = await soci(root, ['index', 'rm', '--ref', 'example.com/a:1-soci']);
    t.equal(r2.code, 0, r2.stderr);
    t.match(r2.stdout, `removed soci index ${v2row.digest} and 1 ztoc(s)`);
    t.same(JSON.parse((await soci(root, ['ztoc', 'ls', '--json'])).stdout), []);
    const r3 = await soci(root, ['index', 'rm', v1.digest]);
    t.not(r3.code, 0);
    t.match(r3.stderr.trim(), /^soci: soci index sha256:[a-f0-9]+ not found in local store$/);
  });
  await rm(join(dir, 'out'), { recursive: true, force: true });
});
