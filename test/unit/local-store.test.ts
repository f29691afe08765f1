import t from 'tap';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../store/local-store.js';
import { sha256Digest } from '../../ztoc/digest.js';

t.test('content store: atomic put, verified get, corrupt blob detected', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'soci-store-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const store = new LocalStore(root);
  t.teardown(() => store.close());
  const data = Buffer.from('hello zTOC');
  const d = await store.content.put(data);
  t.equal(d, sha256Digest(data));
  t.equal(store.content.pathOf(d), join(root, 'content', 'blobs', 'sha256', d.slice(7)));
  t.same(await store.content.get(d), data);
  await t.rejects(store.content.put(data, 'sha256:' + '0'.repeat(64)), /digest mismatch/);
  t.same(await readdir(join(root, 'content', 'ingest')), [], 'no temp files left behind');
  await writeFile(store.content.pathOf(d), 'tampered');
  await t.rejects(store.content.get(d), /is corrupt/);
  await t.rejects(store.content.get('sha256:' + '1'.repeat(64)), /not found in local store/);
  t.same(await store.content.list(), [d]);
  const verified = Buffer.from('a verified zTOC');
  const v = await store.content.putVerified(verified, sha256Digest(verified));
  t.equal(v, sha256Digest(verified), 'putVerified stores under the digest it is given');
  t.same(await store.content.get(v), verified, 'and get checks it as for any blob');
});

t.test('artifact db: indexes and ztocs, filters, removal', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'soci-db-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const store = new LocalStore(root);
  t.teardown(() => store.close());
  const idx = { digest: 'sha256:' + 'a'.repeat(64), size: 10, imageRef: 'img:1', manifestDigest: 'sha256:' + 'b'.repeat(64), platform: 'linux/amd64', version: 'v1' as const, created: '2026-01-01T00:00:00.000Z' };
  const z = { digest: 'sha256:' + 'c'.repeat(64), layerDigest: 'sha256:' + 'd'.repeat(64), spanSize: 4194304, size: 99 };
  store.db.addIndex(idx, [z]);
  t.same(store.db.listIndexes(), [idx]);
  t.same(store.db.listIndexes({ imageRef: 'other' }), []);
  t.same(store.db.listIndexes({ manifestDigest: idx.manifestDigest }), [idx]);
  t.same(store.db.listZtocs({ layerDigest: z.layerDigest }), [z]);
  t.equal(store.db.removeIndex(idx.digest), true);
  t.same(store.db.listIndexes(), []);
});

t.test('two processes writing the store at once both succeed', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'soci-race-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const worker = fileURLToPath(new URL('../helpers/store-writer.js', import.meta.url));
  const run = (id: number) =>
    new Promise<number>((resolve) => fork(worker, [root, String(id)], { stdio: 'inherit' }).on('exit', (c) => resolve(c ?? 1)));
  const codes = await Promise.all([run(1), run(2), run(3)]);
  t.same(codes, [0, 0, 0]);
  const store = new LocalStore(root);
  t.teardown(() => store.close());
  t.equal(store.db.listIndexes().length, 3 * 20);
  t.equal((await store.content.list()).length, 1 + 3 * 20, 'the shared blob once, plus each own blob');
  t.same(await readdir(join(root, 'content', 'ingest')), []);
});
