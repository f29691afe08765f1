import t, { type Test } from 'tap';
import { SociError } from '../../errors/errors.js';
import { parseGoTime } from '../../fs/go-time-parse.js';
import { buildInodeTree } from '../../fs/inode-tree.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, type Inode, type InodeTree } from '../../fs/inode.js';
import { devMajor, devMinor, makedev } from '../../fs/makedev.js';
import { bdiName } from '../../fs/mountpoint.js';
import { formatGoTime } from '../../ztoc/go-time.js';
import type { EntryType, FileMetadata } from '../../ztoc/types.js';

let offset = 512;
function entry(name: string, type: EntryType, extra: Partial<FileMetadata> = {}): FileMetadata {
  const size = extra.uncompressedSize ?? 0;
  const e: FileMetadata = {
    name,
    type,
    uncompressedOffset: offset,
    uncompressedSize: size,
    linkname: '',
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    modTime: '2021-03-04T05:06:07.123456789Z',
    devmajor: 0,
    devminor: 0,
    xattrs: [],
    ...extra,
  };
  offset += 512 + Math.ceil(size / 512) * 512;
  return e;
}
const reg = (name: string, size = 1, extra: Partial<FileMetadata> = {}) => entry(name, 'reg', { uncompressedSize: size, ...extra });
const dir = (name: string, extra: Partial<FileMetadata> = {}) => entry(name, 'dir', extra);
const link = (name: string, target: string) => entry(name, 'hardlink', { linkname: target });
const xattr = (key: string, value: string) => ({ key, value: Buffer.from(value) });

function at(tree: InodeTree, path: string): Inode {
  const n = tree.byPath.get(path);
  if (!n) throw new Error(`no ${path}`);
  return n;
}

function rejects(t: Test, toc: FileMetadata[], pattern: RegExp): void {
  try {
    buildInodeTree(toc);
    t.fail(`accepted; expected ${pattern}`);
  } catch (err) {
    t.ok(err instanceof SociError && err.kind === 'invalid-argument', 'a SociError invalid-argument');
    t.match((err as Error).message, pattern);
  }
}

t.test('parseGoTime inverts formatGoTime exactly, with offsets', async (t) => {
  const cases = [
    { sec: 0, nsec: 0 },
    { sec: 1614834367, nsec: 123456789 },
    { sec: 1614834367, nsec: 1 },
    { sec: -1, nsec: 500000000 },
    { sec: 951782400, nsec: 0 },
    { sec: 253402300799, nsec: 999999999 },
    { sec: -62167219200, nsec: 0 },
  ];
  for (const c of cases) t.same(parseGoTime(formatGoTime(c)), c, formatGoTime(c));
  t.same(parseGoTime('2021-03-04T07:06:07.5+02:00'), { sec: 1614834367, nsec: 500000000 });
  t.same(parseGoTime('2021-03-04T04:36:07-00:30'), { sec: 1614834367, nsec: 0 });
  t.same(parseGoTime(''), { sec: 0, nsec: 0 });
  t.throws(() => parseGoTime('2021-03-04 05:06:07Z'), /not RFC 3339/);
  t.throws(() => parseGoTime('2021-13-04T05:06:07Z'), /out of range/);
});

t.test('makedev encodes like glibc and round-trips', async (t) => {
  t.equal(makedev(1, 3, 'x'), 0x103);
  t.equal(makedev(8, 1, 'x'), 0x801);
  t.equal(makedev(259, 300, 'x'), (259 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12));
  t.equal(makedev(4095, 0xfffff, 'x'), 0xffffffff);
  t.equal(devMajor(makedev(259, 70000, 'x')), 259);
  t.equal(devMinor(makedev(259, 70000, 'x')), 70000);
  t.throws(() => makedev(4096, 0, 'dev x'), /dev x: device 4096:0/);
  t.equal(bdiName(0x2dn), '0:45');
  t.equal(bdiName((0x1n << 44n) | (0x3n << 20n) | (0x2n << 8n) | 0x45n), '4098:837');
});

t.test('every entry type gets its stat fields', async (t) => {
  const tree = buildInodeTree([
    dir('./'),
    dir('./d', { mode: 0o3775, uid: 5, gid: 6, modTime: '2020-01-01T00:00:00.000000001Z' }),
    reg('./d/f', 1000, { mode: 0o4755, uid: 1000, gid: 1001 }),
    entry('./d/s', 'symlink', { linkname: '../héllo' }),
    entry('./d/c', 'char', { devmajor: 1, devminor: 3, mode: 0o666 }),
    entry('./d/b', 'block', { devmajor: 259, devminor: 300, mode: 0o660 }),
    entry('./d/p', 'fifo', { mode: 0o1644 }),
    dir('./d/sub'),
    dir('./d/sub2/'),
  ]);
  const d = at(tree, '/d');
  t.equal(d.mode, S_IFDIR | 0o3775);
  t.equal(d.uid, 5);
  t.equal(d.gid, 6);
  t.same(d.mtime, { sec: 1577836800, nsec: 1 });
  t.equal(d.nlink, 4, 'dir nlink = 2 + subdirs');
  t.equal(at(tree, '/').nlink, 3);
  const f = at(tree, '/d/f');
  t.equal(f.mode, S_IFREG | 0o4755);
  t.equal(f.size, 1000);
  t.equal(f.uid, 1000);
  t.equal(f.gid, 1001);
  t.same(f.mtime, { sec: 1614834367, nsec: 123456789 });
  t.equal(f.nlink, 1);
  const s = at(tree, '/d/s');
  t.equal(s.mode, S_IFLNK | 0o777);
  t.equal(s.linkTarget, '../héllo');
  t.equal(s.size, Buffer.byteLength('../héllo'));
  t.equal(at(tree, '/d/c').mode, S_IFCHR | 0o666);
  t.equal(at(tree, '/d/c').rdev, 0x103);
  t.equal(at(tree, '/d/b').mode, S_IFBLK | 0o660);
  t.equal(at(tree, '/d/b').rdev, makedev(259, 300, 'x'));
  t.equal(at(tree, '/d/p').mode, S_IFIFO | 0o1644);
  t.same(d.listing, ['.', '..', 'f', 's', 'c', 'b', 'p', 'sub', 'sub2'], 'listing keeps tar order');
  t.same(tree.inodes.map((n) => n.ino), tree.inodes.map((_, i) => i + 1), 'inos are dense from 1');
  t.equal(tree.root.ino, 1);
  t.equal(tree.totalSize, 1000);
  t.same(tree.warnings, []);
});

t.test('implicit parents: 0755 root:root at the epoch, and a later entry fills them in', async (t) => {
  const tree = buildInodeTree([reg('a/b/c/file'), dir('a/b', { mode: 0o700, uid: 7 })]);
  const a = at(tree, '/a');
  t.equal(a.mode, S_IFDIR | 0o755);
  t.equal(a.uid, 0);
  t.same(a.mtime, { sec: 0, nsec: 0 });
  t.ok(a.implicit);
  const b = at(tree, '/a/b');
  t.equal(b.mode, S_IFDIR | 0o700);
  t.equal(b.uid, 7);
  t.notOk(b.implicit);
  t.equal(at(tree, '/a/b/c/file').size, 1);
  t.ok(tree.root.implicit, 'root with no ./ entry is implicit');
});

t.test('duplicates: later wins as with tar -x', async (t) => {
  const tree = buildInodeTree([
    reg('f1', 3, { mode: 0o600 }),
    reg('f1', 5, { mode: 0o640 }),
    reg('fd', 1),
    dir('fd'),
    reg('fd/k'),
    dir('dd', { mode: 0o700, xattrs: [xattr('SCHILY.xattr.user.a', '1'), xattr('SCHILY.xattr.user.c', 'old')] }),
    reg('dd/k'),
    dir('dd', { mode: 0o751, modTime: '1970-01-01T00:00:07Z', xattrs: [xattr('SCHILY.xattr.user.b', '2'), xattr('SCHILY.xattr.user.c', 'new')] }),
    dir('full'),
    reg('full/k'),
    reg('full', 9),
    dir('empty'),
    reg('empty', 4),
    reg('x', 1, { xattrs: [xattr('SCHILY.xattr.user.a', '1')] }),
    reg('x', 1, { xattrs: [xattr('SCHILY.xattr.user.b', '2')] }),
    reg('file'),
    reg('file/under'),
  ]);
  t.equal(at(tree, '/f1').size, 5);
  t.equal(at(tree, '/f1').mode, S_IFREG | 0o640);
  t.equal(at(tree, '/fd').kind, 'dir', 'dir replaces a file');
  t.equal(at(tree, '/fd/k').kind, 'reg');
  const dd = at(tree, '/dd');
  t.equal(dd.mode, S_IFDIR | 0o751, 'dir over dir takes the new metadata');
  t.same(dd.mtime, { sec: 7, nsec: 0 });
  t.ok(tree.byPath.has('/dd/k'), 'and keeps the children');
  t.same(Object.fromEntries([...(dd.xattrs ?? [])].map(([k, v]) => [k, v.toString()])), { 'user.a': '1', 'user.c': 'new', 'user.b': '2' }, 'xattrs are added, as setxattr does');
  t.equal(at(tree, '/full').kind, 'dir', 'a file cannot replace a non-empty dir (tar rmdir fails)');
  t.ok(tree.byPath.has('/full/k'));
  t.equal(at(tree, '/empty').kind, 'reg', 'but replaces an empty one');
  t.same([...(at(tree, '/x').xattrs?.keys() ?? [])], ['user.b'], 'a replaced file has only the new xattrs');
  t.notOk(tree.byPath.has('/file/under'), 'entry below a file is dropped');
  t.equal(tree.warnings.length, 2);
  t.match(tree.warnings[0], /"full" dropped: it would replace a non-empty directory/);
  t.match(tree.warnings[1], /"file\/under" dropped: parent file is not a directory/);
});

t.test('hardlinks share one inode with the right nlink', async (t) => {
  const tree = buildInodeTree([
    reg('a', 10),
    link('b', 'a'),
    link('./sub/c', './a'),
    reg('old', 3),
    link('old-link', 'old'),
    reg('old', 4),
    reg('p', 1),
    link('q', 'p'),
    reg('q', 2),
    entry('sym', 'symlink', { linkname: 'a' }),
    link('sym2', 'sym'),
    reg('self'),
    link('self', 'self'),
  ]);
  const a = at(tree, '/a');
  t.equal(at(tree, '/b'), a);
  t.equal(at(tree, '/sub/c'), a);
  t.equal(a.nlink, 3);
  t.equal(at(tree, '/old-link').size, 3, 'link keeps the inode its target had then');
  t.equal(at(tree, '/old').size, 4);
  t.equal(at(tree, '/old').nlink, 1);
  t.equal(at(tree, '/old-link').nlink, 1);
  t.equal(at(tree, '/p').nlink, 1, 'overwriting a link unlinks it first');
  t.equal(at(tree, '/q').size, 2);
  t.equal(at(tree, '/sym2'), at(tree, '/sym'));
  t.equal(at(tree, '/sym').nlink, 2);
  t.equal(at(tree, '/self').nlink, 1);
  t.equal(new Set(tree.inodes).size, tree.inodes.length);
  t.equal(tree.totalSize, 10 + 3 + 4 + 1 + 2 + 1, 'sizes count once per inode');
});

t.test('whiteouts and opaque dirs', async (t) => {
  const tree = buildInodeTree([
    dir('d'),
    entry('d/.wh.gone', 'reg', { uid: 3, gid: 4, mode: 0o644 }),
    reg('d/.wh..wh..opq', 0),
    reg('d/kept'),
    reg('implicit/.wh..wh..opq', 0),
  ]);
  const w = at(tree, '/d/gone');
  t.equal(w.kind, 'char');
  t.equal(w.mode, S_IFCHR);
  t.equal(w.rdev, 0);
  t.equal(w.uid, 3);
  t.equal(w.gid, 4);
  t.notOk(tree.byPath.has('/d/.wh.gone'));
  t.notOk(tree.byPath.has('/d/.wh..wh..opq'));
  t.same(at(tree, '/d').listing, ['.', '..', 'gone', 'kept']);
  t.equal(at(tree, '/d').xattrs?.get('trusted.overlay.opaque')?.toString(), 'y');
  t.equal(at(tree, '/implicit').xattrs?.get('trusted.overlay.opaque')?.toString(), 'y');
  t.same(at(tree, '/implicit').listing, ['.', '..']);
  rejects(t, [reg('d/.wh.')], /bad whiteout name/);
  rejects(t, [reg('d/.wh..')], /bad whiteout name/);
});

t.test('xattrs come from SCHILY.xattr records only; disableXattrs', async (t) => {
  const bin = Buffer.from([0, 1, 2, 255]);
  const recs = [
    { key: 'SCHILY.xattr.security.capability', value: bin },
    xattr('SCHILY.xattr.user.x', 'v'),
    xattr('mtime', '123.5'),
    xattr('LIBARCHIVE.creationtime', '1'),
  ];
  const tree = buildInodeTree([reg('f', 1, { xattrs: recs })]);
  const f = at(tree, '/f');
  t.same([...(f.xattrs?.keys() ?? [])], ['security.capability', 'user.x']);
  t.same(f.xattrs?.get('security.capability'), bin);
  t.ok(tree.xattrsEnabled);
  const off = buildInodeTree([reg('f', 1)], { disableXattrs: true });
  t.notOk(off.xattrsEnabled);
  t.same(off.warnings, []);
  const contradicted = buildInodeTree([reg('f', 1, { xattrs: recs })], { disableXattrs: true });
  t.ok(contradicted.xattrsEnabled, 'a layer that has xattrs serves them whatever the annotation says');
  t.match(contradicted.warnings[0], /disable-xattrs/);
  t.equal(at(contradicted, '/f').xattrs?.get('user.x')?.toString(), 'v');
});

t.test('names: leading / and ./ stripped, bad names refused with the entry named', async (t) => {
  const tree = buildInodeTree([reg('/abs/file'), reg('./rel/./x'), reg('ütf8/日本語 ✓'), dir('.')]);
  t.ok(tree.byPath.has('/abs/file'));
  t.ok(tree.byPath.has('/rel/x'));
  t.ok(tree.byPath.has('/ütf8/日本語 ✓'));
  rejects(t, [reg('a/../../etc/passwd')], /tar entry "a\/\.\.\/\.\.\/etc\/passwd": "\.\." component/);
  rejects(t, [reg('../x')], /"\.\." component/);
  rejects(t, [reg('a//b')], /"a\/\/b": empty path component/);
  rejects(t, [reg('a\0b')], /NUL in name/);
  rejects(t, [reg('')], /empty name/);
  rejects(t, [reg('./')], /names the layer root but is a reg/);
  rejects(t, [reg('a'), link('b', '../a')], /tar entry "b" link target "\.\.\/a": "\.\." component/);
  rejects(t, [link('b', 'missing')], /tar entry "b": hardlink target "missing" does not exist/);
  rejects(t, [dir('d'), link('b', 'd')], /tar entry "b": hardlink target "d" is a directory/);
  rejects(t, [entry('l', 'symlink', { linkname: '/etc' }), reg('l/passwd')], /tar entry "l\/passwd": parent "l" is a symlink/);
  rejects(t, [reg('f', 1, { modTime: 'yesterday' })], /tar entry "f": mod time "yesterday" is not RFC 3339/);
  rejects(t, [entry('c', 'char', { devmajor: 5000, devminor: 1 })], /tar entry "c": device 5000:1/);
  rejects(t, [entry('s', 'symlink', { linkname: '' })], /symlink with an empty target/);
});

t.test('100k entries build fast and look up by path and by (dir, name)', async (t) => {
  const toc: FileMetadata[] = [];
  for (let d = 0; d < 100; d++) for (let i = 0; i < 1000; i++) toc.push(reg(`d${d}/f${i}`, 1));
  const t0 = performance.now();
  const tree = buildInodeTree(toc);
  const ms = performance.now() - t0;
  t.equal(tree.inodes.length, 100_000 + 100 + 1);
  t.equal(tree.byPath.get('/d99/f999')?.kind, 'reg');
  t.equal(at(tree, '/d42').children?.get('f7'), tree.byPath.get('/d42/f7'));
  t.ok(ms < 2000, `built in ${ms.toFixed(0)} ms`);
});
