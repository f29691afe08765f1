import t, { type Test } from 'tap';
import { mkdir, writeFile, link, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SociError } from '../../errors/errors.js';
import { SnapshotStore, type Scope } from '../../daemon/snapshot-store.js';
import { SnapshotDirs } from '../../daemon/snapshot-dirs.js';
import { mountsFor } from '../../daemon/mounts.js';
import { containerdNamespace } from '../../daemon/snapshotter.js';
import { diskUsage } from '../../daemon/usage.js';
import { parseFilter, parseFilters } from '../../daemon/filters.js';
import { tempDirFor } from '../helpers/tmp.js';

const NS = 'default';
const ZERO = { size: 0, inodes: 0 };

function failure(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof SociError ? `${err.kind}: ${err.message}` : `other: ${String(err)}`;
  }
}

async function newStore(t: Test): Promise<{ store: SnapshotStore; dir: string }> {
  const dir = await tempDirFor(t, 'soci-store-');
  const store = new SnapshotStore(join(dir, 'snapshots', 'metadata.db'));
  t.teardown(() => store.close());
  return { store, dir };
}

/** base <- layer2 (committed chain), plus an active and a view on top. */
function chain(store: SnapshotStore, ns: Scope = NS): void {
  store.create(ns, { kind: 'ACTIVE', key: 'k1', parent: '', labels: { 'containerd.io/snapshot/x': 'a' } });
  store.commit(ns, { key: 'k1', name: 'base', labels: { role: 'base', 'containerd.io/gc.root': 'y' }, usage: { size: 8192, inodes: 3 } });
  store.create(ns, { kind: 'ACTIVE', key: 'k2', parent: 'base', labels: {} });
  store.commit(ns, { key: 'k2', name: 'layer2', labels: { role: 'layer' }, usage: ZERO });
  store.create(ns, { kind: 'ACTIVE', key: 'work', parent: 'layer2', labels: { 'a.b': 'dotted' } });
  store.create(ns, { kind: 'VIEW', key: 'look', parent: 'layer2', labels: { role: 'view' } });
}

t.test('create, commit, get: ids, kinds, parents, labels, usage', async (t) => {
  const { store } = await newStore(t);
  chain(store);
  const base = store.get(NS, 'base');
  t.equal(base.info.kind, 'COMMITTED');
  t.same(base.info.labels, { role: 'base', 'containerd.io/gc.root': 'y' }, 'commit labels replace the active ones');
  t.same(base.usage, { size: 8192, inodes: 3 });
  t.equal(base.id, 1, 'the committed snapshot keeps the id (and so the directory) of its active key');
  t.match(failure(() => store.get(NS, 'k1')), /^not-found: snapshot "k1" in namespace "default" does not exist$/);
  const work = store.get(NS, 'work');
  t.same({ kind: work.info.kind, parent: work.info.parent, parentIds: work.parentIds, usage: work.usage },
    { kind: 'ACTIVE', parent: 'layer2', parentIds: [2, 1], usage: null });
  t.same(store.get(NS, 'look').parentIds, [2, 1]);
  t.ok(work.info.createdAt.getTime() <= Date.now() && work.info.createdAt.getTime() > Date.now() - 60_000);
});

t.test('containerd semantics: errors and their kinds', async (t) => {
  const { store } = await newStore(t);
  chain(store);
  const create = (key: string, parent: string, labels: Record<string, string> = {}): string =>
    failure(() => store.create(NS, { kind: 'ACTIVE', key, parent, labels }));
  t.equal(create('x', 'nope'), 'not-found: parent "nope" of snapshot "x" in namespace "default" does not exist');
  t.equal(create('x', 'work'), 'invalid-argument: parent "work" of snapshot "x" in namespace "default" is not committed (it is active)');
  t.equal(create('work', 'base'), 'already-exists: snapshot "work" in namespace "default" already exists');
  t.equal(create('base', ''), 'already-exists: snapshot "base" in namespace "default" already exists', 'keys are unique across kinds');
  t.equal(create('', ''), 'invalid-argument: snapshot key must not be empty');
  t.equal(create('x', '', { '': 'v' }), 'invalid-argument: snapshot "x" in namespace "default": label key must not be empty');
  t.match(create('x', '', { big: 'v'.repeat(4094) }), /^invalid-argument: .*label "big" is 4097 bytes; key and value may have at most 4096 bytes$/);
  t.equal(create('x', '', { ok: 'v'.repeat(4094) }), 'ok', 'exactly 4096 bytes is allowed');

  const commit = (key: string, name: string): string => failure(() => store.commit(NS, { key, name, labels: {}, usage: ZERO }));
  t.equal(commit('look', 'L'), 'failed-precondition: snapshot "look" in namespace "default" is a view snapshot; only active snapshots can be committed');
  t.equal(commit('base', 'B'), 'failed-precondition: snapshot "base" in namespace "default" is a committed snapshot; only active snapshots can be committed');
  t.equal(commit('missing', 'M'), 'not-found: snapshot "missing" in namespace "default" does not exist');
  t.equal(commit('work', 'layer2'), 'already-exists: cannot commit snapshot "work" in namespace "default": snapshot "layer2" in namespace "default" already exists');
  t.equal(commit('work', ''), 'invalid-argument: commit name must not be empty');

  t.equal(failure(() => store.remove(NS, 'layer2')),
    'failed-precondition: cannot remove snapshot "layer2" in namespace "default": it has children ("work", "look")');
  t.equal(failure(() => store.remove(NS, 'gone')), 'not-found: snapshot "gone" in namespace "default" does not exist');
  t.equal(store.remove(NS, 'work').id, 3);
  t.equal(store.remove(NS, 'look').id, 4);
  t.equal(store.remove(NS, 'layer2').info.name, 'layer2', 'a parent can go once its children are gone');
  t.same(store.list(NS).map((i) => i.name).sort(), ['base', 'x']);
});

t.test('namespaces: isolated; no header = namespace ""', async (t) => {
  const { store } = await newStore(t);
  chain(store, 'a');
  chain(store, '');
  t.same(store.list('a').map((i) => i.name), ['base', 'layer2', 'work', 'look']);
  t.same(store.list('').map((i) => i.name), ['base', 'layer2', 'work', 'look']);
  t.same(store.list('c'), []);
  t.match(failure(() => store.get('c', 'base')), /^not-found: snapshot "base" in namespace "c" does not exist$/);
  t.match(failure(() => store.get('', 'nope')), /^not-found: snapshot "nope" does not exist$/);
  t.equal(store.get('a', 'base').id, 1);
  t.equal(store.get('', 'base').id, 5);
  t.equal(failure(() => store.create('c', { kind: 'ACTIVE', key: 'x', parent: 'base', labels: {} })),
    'not-found: parent "base" of snapshot "x" in namespace "c" does not exist', 'parents are looked up in the same namespace');
  t.equal(containerdNamespace('', 'k8s.io/12/sha256:abc'), 'k8s.io', 'containerd backend keys carry the namespace');
  t.equal(containerdNamespace('', 'extract-1'), '');
  t.equal(containerdNamespace('ns1', 'k8s.io/12/x'), 'ns1', 'the header wins');
});

t.test('update: label mask semantics', async (t) => {
  const { store } = await newStore(t);
  store.create(NS, { kind: 'ACTIVE', key: 's', parent: '', labels: { a: '1', b: '2', c: '3' } });
  const before = store.get(NS, 's').info.updatedAt.getTime();
  t.same(store.update(NS, 's', { a: 'one', z: 'ignored' }, ['labels.a']).labels, { a: 'one', b: '2', c: '3' }, 'only the masked key changes');
  t.same(store.update(NS, 's', {}, ['labels.b']).labels, { a: 'one', c: '3' }, 'a masked key absent from info is deleted');
  t.same(store.update(NS, 's', { c: '' }, ['labels.c']).labels, { a: 'one' }, 'an empty value deletes');
  t.same(store.update(NS, 's', { n: 'new', 'x.y': 'dot' }, ['labels.n', 'labels.x.y']).labels, { a: 'one', n: 'new', 'x.y': 'dot' });
  t.same(store.update(NS, 's', { only: 'this' }, ['labels']).labels, { only: 'this' }, '"labels" replaces all');
  const info = store.update(NS, 's', { r: 'all' }, []);
  t.same(info.labels, { r: 'all' }, 'an empty mask replaces all labels');
  t.ok(info.updatedAt.getTime() >= before);
  t.equal(failure(() => store.update(NS, 's', {}, ['parent'])),
    'invalid-argument: cannot update field "parent" of snapshot "s" in namespace "default": only labels can be updated');
  t.equal(failure(() => store.update(NS, 's', {}, ['labels.'])),
    'invalid-argument: cannot update field "labels." of snapshot "s" in namespace "default": only labels can be updated');
  t.equal(failure(() => store.update(NS, 'nope', {}, [])), 'not-found: snapshot "nope" in namespace "default" does not exist');
  t.match(failure(() => store.update(NS, 's', { huge: 'x'.repeat(5000) }, ['labels.huge'])), /^invalid-argument: .*"huge" is 5004 bytes/);
  t.same(store.get(NS, 's').info.labels, { r: 'all' }, 'a refused update changes nothing');
});

t.test('list filters (containerd syntax)', async (t) => {
  const { store } = await newStore(t);
  chain(store);
  const names = (...filters: string[]): string[] => store.list(NS, filters).map((i) => i.name);
  t.same(names(), ['base', 'layer2', 'work', 'look']);
  t.same(names('name==layer2'), ['layer2']);
  t.same(names('parent==layer2'), ['work', 'look']);
  t.same(names('parent==""'), ['base'], 'parent=="" matches root snapshots, as containerd\'s adaptor does');
  t.same(names('parent!=""'), ['layer2', 'work', 'look']);
  t.same(names('kind==committed'), ['base', 'layer2']);
  t.same(names('kind==active'), ['work']);
  t.same(names('kind==view'), ['look']);
  t.same(names('labels.role==layer'), ['layer2']);
  t.same(names('labels."containerd.io/gc.root"'), ['base'], 'quoted label key, presence');
  t.same(names('labels."containerd.io/gc.root"==y'), ['base']);
  t.same(names('labels."a.b"==dotted'), ['work']);
  t.same(names('labels.a.b==dotted'), ['work'], 'an unquoted dotted path joins with "."');
  t.same(names('kind==committed,labels.role==base'), ['base'], 'comma = AND');
  t.same(names('kind==view', 'name==base'), ['base', 'look'], 'several filters = OR');
  t.same(names('labels.role!=base'), ['layer2', 'work', 'look']);
  t.same(names('name~=^la'), ['layer2']);
  t.same(names('labels.role~=/^(view|base)$/'), ['base', 'look']);
  t.same(names('name=="layer2"'), ['layer2'], 'quoted value');
  t.same(names(''), ['base', 'layer2', 'work', 'look'], 'an empty filter string matches all');
  t.same(names('unknownfield==x'), []);
  t.match(failure(() => store.list(NS, ['name=='])), /^invalid-argument: filter "name==": expected a value at offset 6$/);
  t.match(failure(() => store.list(NS, ['name==a b'])), /^invalid-argument: filter "name==a b": expected "," or end of filter/);
  t.match(failure(() => store.list(NS, ['labels."x==1'])), /^invalid-argument: filter .*unterminated "-quoted string/);
  t.match(failure(() => store.list(NS, ['name~=/(/'])), /^invalid-argument: filter .*bad regular expression/);
  t.same(parseFilter('labels."k\\"q"==v'), [{ fieldpath: ['labels', 'k"q'], op: '==', value: 'v' }]);
  t.equal(parseFilters([])(() => ({ value: '', present: false })), true);
});

t.test('persistence, remote snapshots, ids', async (t) => {
  const { store, dir } = await newStore(t);
  chain(store);
  const remote = { imageRef: 'example.com/app:1', layerDigest: 'sha256:aa', indexDigest: 'sha256:bb', namespace: NS, extra: { ztoc: 'sha256:cc' } };
  store.create(NS, { kind: 'ACTIVE', key: 'r', parent: 'layer2', labels: {}, remote });
  store.commit(NS, { key: 'r', name: 'remote-layer', labels: {}, usage: ZERO });
  store.close();
  const again = new SnapshotStore(join(dir, 'snapshots', 'metadata.db'));
  t.teardown(() => again.close());
  t.same(again.list(NS).map((i) => `${i.name}:${i.kind}`), ['base:COMMITTED', 'layer2:COMMITTED', 'work:ACTIVE', 'look:VIEW', 'remote-layer:COMMITTED']);
  const rc = again.remoteCommitted();
  t.same(rc.map((s) => ({ id: s.id, name: s.info.name, remote: s.remote, parents: s.parentIds })),
    [{ id: 5, name: 'remote-layer', remote, parents: [2, 1] }]);
  again.setRemote(5, null);
  t.same(again.remoteCommitted(), []);
  t.same([...again.ids()].sort(), [1, 2, 3, 4, 5]);
  again.remove(NS, 'remote-layer');
  again.create(NS, { kind: 'ACTIVE', key: 'after', parent: '', labels: {} });
  t.equal(again.get(NS, 'after').id, 6, 'ids are never reused, so a stale directory cannot be inherited');
  const journal = await stat(join(dir, 'snapshots', 'metadata.db-wal')).catch(() => undefined);
  t.ok(journal, 'WAL mode');
});

t.test('mounts as containerd overlayfs returns them', async (t) => {
  const { store, dir } = await newStore(t);
  chain(store);
  const dirs = new SnapshotDirs(dir);
  const fs = (id: number): string => join(dir, 'snapshots', String(id), 'fs');
  const base = ['index=off'];
  t.same(mountsFor(store.get(NS, 'work'), dirs, base), [{
    type: 'overlay', source: 'overlay',
    options: ['index=off', `workdir=${join(dir, 'snapshots', '3', 'work')}`, `upperdir=${fs(3)}`, `lowerdir=${fs(2)}:${fs(1)}`],
  }]);
  t.same(mountsFor(store.get(NS, 'look'), dirs, base), [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${fs(2)}:${fs(1)}`] }],
    'a view on several layers: read-only overlay, lowerdir only');
  store.create(NS, { kind: 'VIEW', key: 'v1', parent: 'base', labels: {} });
  t.same(mountsFor(store.get(NS, 'v1'), dirs, base), [{ type: 'bind', source: fs(1), options: ['ro', 'rbind'] }]);
  store.create(NS, { kind: 'ACTIVE', key: 'fresh', parent: '', labels: {} });
  t.same(mountsFor(store.get(NS, 'fresh'), dirs, []), [{ type: 'bind', source: fs(6), options: ['rw', 'rbind'] }]);
  store.create(NS, { kind: 'VIEW', key: 'empty-view', parent: '', labels: {} });
  t.same(mountsFor(store.get(NS, 'empty-view'), dirs, []), [{ type: 'bind', source: fs(7), options: ['ro', 'rbind'] }]);
});

t.test('usage counts allocated blocks and distinct inodes; cleanup removes unknown dirs', async (t) => {
  const dir = await tempDirFor(t, 'soci-usage-');
  const dirs = new SnapshotDirs(dir);
  await dirs.create(3);
  const root = dirs.fs(3);
  await mkdir(join(root, 'sub'));
  await writeFile(join(root, 'sub', 'a'), Buffer.alloc(10_000, 1));
  await link(join(root, 'sub', 'a'), join(root, 'hard'));
  await writeFile(join(root, 'empty'), '');
  const blocks = async (p: string): Promise<number> => (await stat(p)).blocks * 512;
  const expected = (await blocks(root)) + (await blocks(join(root, 'sub'))) + (await blocks(join(root, 'sub', 'a')));
  t.same(await diskUsage(root), { size: expected, inodes: 4 }, 'root, sub, a (= hard), empty');
  t.ok(expected >= 12_288, 'a 10000-byte file takes at least three 4 KiB blocks');

  await dirs.create(4);
  await mkdir(join(dir, 'snapshots', 'not-a-number'));
  const res = await dirs.cleanup(new Set([4]));
  t.same(res, { removed: [3], busy: [] });
  t.notOk(existsSync(dirs.dir(3)));
  t.ok(existsSync(dirs.dir(4)));
  t.ok(existsSync(join(dir, 'snapshots', 'not-a-number')), 'only numeric snapshot dirs are touched');
});
