/**
 * Bad input to `soci create` and friends: one-line error naming the object and the cause,
 * a non-zero exit, and nothing half-written in the store.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';
import { LocalStore } from '../../store/local-store.js';

const digestOf = (b: Uint8Array): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** An OCI layout with one layer whose blob bytes are exactly `blob`. */
async function layoutWithLayer(dir: string, blob: Buffer, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip'): Promise<string> {
  const layout = join(dir, 'layout');
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer): Promise<{ digest: string; size: number }> => {
    const d = digestOf(b);
    await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const config = await put(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
  const layer = await put(blob);
  const manifest = await put(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType, ...layer }] })),
  );
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bad' } }] }));
  return layout;
}

async function realTar(): Promise<Buffer> {
  return (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'etc'])).stdoutBuffer;
}

async function assertNothingStored(t: Test, root: string): Promise<void> {
  const blobs = await readdir(join(root, 'content', 'blobs', 'sha256')).catch(() => []);
  t.same(blobs, [], 'no blobs written');
  const store = new LocalStore(root);
  t.same(store.db.listIndexes(), [], 'no index recorded');
  t.same(store.db.listZtocs(), [], 'no ztoc recorded');
  store.close();
}

async function expectCreateFails(t: Test, blob: Buffer, pattern: RegExp, opts: { mediaType?: string; args?: string[] } = {}): Promise<void> {
  const dir = await tempDirFor(t, 'soci-bad-');
  const layout = await layoutWithLayer(dir, blob, opts.mediaType);
  const root = join(dir, 'root');
  const r = await soci(root, ['create', '--oci-layout', layout, '--min-layer-size', '0', ...(opts.args ?? []), 'bad']);
  t.not(r.code, 0, 'non-zero exit');
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${r.stderr.trim()}`);
  t.match(lines[0], /^soci: /);
  t.match(lines[0], pattern);
  t.match(lines[0], digestOf(blob), 'names the layer');
  await assertNothingStored(t, root);
}

t.test('truncated gzip', async (t) => {
  const gz = gzipSync(await realTar());
  await expectCreateFails(t, gz.subarray(0, Math.floor(gz.length * 0.6)), /truncated/);
});

t.test('corrupt gzip', async (t) => {
  const gz = Buffer.from(gzipSync(await realTar()));
  for (let i = 0; i < 64; i++) gz[Math.floor(gz.length / 2) + i] ^= 0x5a;
  // Depending on where the damage lands, inflate, the tar reader or the CRC check notices first.
  await expectCreateFails(t, gz, /gzip|deflate|invalid|corrupt|checksum|CRC/i);
});

t.test('not gzip at all', async (t) => {
  await expectCreateFails(t, Buffer.from('this is plain text, not a gzip stream'.repeat(100)), /not gzip|bad magic|incorrect header/i);
});

t.test('not a tar', async (t) => {
  const random = createHash('sha512');
  const parts: Buffer[] = [];
  for (let i = 0; i < 2000; i++) parts.push(random.copy().update(String(i)).digest());
  await expectCreateFails(t, gzipSync(Buffer.concat(parts)), /not a tar/);
});

t.test('GNU sparse entry', async (t) => {
  const dir = await tempDirFor(t, 'soci-sparse-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'hello'), 'hi\n');
  await writeFile(join(dir, 'src', 'sparse.img'), '');
  await truncate(join(dir, 'src', 'sparse.img'), 20 << 20);
  await writeFile(join(dir, 'src', 'sparse.img'), 'data at start', { flag: 'r+' });
  const tar = (await execOk('tar', ['-C', join(dir, 'src'), '--sparse', '--format=gnu', '-cf', '-', '.'])).stdoutBuffer;
  await expectCreateFails(t, gzipSync(tar), /sparse\.img.*'S'.*GNU sparse/);
});

t.test('no layer above the minimum size', async (t) => {
  const dir = await tempDirFor(t, 'soci-small-');
  const layout = await layoutWithLayer(dir, gzipSync(await realTar()));
  const root = join(dir, 'root');
  const r = await soci(root, ['create', '--oci-layout', layout, '--min-layer-size', '1GiB', 'bad']);
  t.not(r.code, 0);
  t.match(r.stdout, /ztoc skipped \(layer size \d+ < min layer size 1073741824\)/);
  t.match(r.stderr.trim(), /^soci: no ztocs created/);
  t.equal(r.stderr.trim().split('\n').length, 1);
  await assertNothingStored(t, root);
});

t.test('layer blob that does not match its digest', async (t) => {
  const dir = await tempDirFor(t, 'soci-mismatch-');
  const gz = gzipSync(await realTar());
  const layout = await layoutWithLayer(dir, gz);
  const path = join(layout, 'blobs', 'sha256', digestOf(gz).slice(7));
  const bad = Buffer.from(gz);
  bad[4] ^= 1; // gzip header MTIME: still a valid gzip stream, only the digest differs
  await writeFile(path, bad);
  const root = join(dir, 'root');
  const r = await soci(root, ['create', '--oci-layout', layout, '--min-layer-size', '0', 'bad']);
  t.not(r.code, 0);
  t.match(r.stderr, /digest mismatch/);
  await assertNothingStored(t, root);
});

t.test('zTOC with flipped bytes', async (t) => {
  const dir = await tempDirFor(t, 'soci-flip-');
  const layout = await layoutWithLayer(dir, gzipSync(await realTar()));
  const root = join(dir, 'root');
  const ok = await soci(root, ['create', '--oci-layout', layout, '--min-layer-size', '0', '--span-size', '65536', 'bad']);
  t.equal(ok.code, 0, ok.stderr);
  const ztoc = /-> ztoc (sha256:[a-f0-9]{64})/.exec(ok.stdout)![1];
  const path = join(root, 'content', 'blobs', 'sha256', ztoc.slice(7));
  const bytes = await readFile(path);
  // In place: the store notices the blob no longer matches its name.
  const flipped = Buffer.from(bytes);
  flipped[100] ^= 0xff;
  await writeFile(path, flipped);
  const r1 = await soci(root, ['ztoc', 'info', ztoc]);
  t.not(r1.code, 0);
  t.match(r1.stderr.trim(), new RegExp(`^soci: blob ${ztoc} in local store is corrupt`));
  // Stored under its own digest (as another tool would): the decoder rejects it.
  const garbled = Buffer.from(bytes);
  for (let i = 0; i < 8; i++) garbled[12 + i] = 0xff;
  const d2 = digestOf(garbled);
  await writeFile(join(root, 'content', 'blobs', 'sha256', d2.slice(7)), garbled);
  const r2 = await soci(root, ['ztoc', 'info', d2]);
  t.not(r2.code, 0);
  t.equal(r2.stderr.trim().split('\n').length, 1);
  t.match(r2.stderr, /^soci: ztoc/);
  await rename(path, path + '.gone');
});

t.test('unknown image and bad flags', async (t) => {
  const dir = await tempDirFor(t, 'soci-flags-');
  const layout = await layoutWithLayer(dir, gzipSync(await realTar()));
  const root = join(dir, 'root');
  const r = await soci(root, ['create', '--oci-layout', layout, 'nope:1']);
  t.not(r.code, 0);
  t.match(r.stderr.trim(), /^soci: OCI layout .* no image named "nope:1"/);
  const r2 = await soci(root, ['create', '--span-size', 'lots', 'x']);
  t.not(r2.code, 0);
  t.match(r2.stderr, /is not a byte count/);
  const r3 = await soci(root, ['index', 'info', 'sha256:' + '0'.repeat(64)]);
  t.not(r3.code, 0);
  t.match(r3.stderr.trim(), /^soci: blob sha256:0+ not found in local store$/);
});
