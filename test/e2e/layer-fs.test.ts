/**
 * Mounts a layer tar through LayerFs and compares a tree walk of the mount with `tar -x` of
 * the same tar (as root), field by field; whiteouts are compared in their overlay form.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CapturingLogger } from '../helpers/capturing-logger.js';
import t, { type Test } from 'tap';
import { buildInodeTree } from '../../fs/inode-tree.js';
import type { Inode, InodeTree } from '../../fs/inode.js';
import { LayerFs } from '../../fs/layer-fs.js';
import type { FsLogger } from '../../fs/fs-logger.js';
import { lazyUnmount } from '../../fs/mountpoint.js';
import { readTar } from '../../ztoc/tar-reader.js';
import { execCapture, execOk } from '../helpers/exec.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { mountsUnder } from '../helpers/mounts.js';

import { fixture, walk, expectedFromExtract, linkGroups, mismatches, type Walked } from '../helpers/tree-walk.js';


/** Everything compared except inode numbers (compared as groups); mtime to the nanosecond. */
function comparable(e: Walked): Omit<Walked, 'ino'> {
  const { ino: _ino, ...rest } = e;
  return rest;
}

function memoryReader(tar: Buffer) {
  return async (n: Inode, offset: number, length: number, dest: Buffer): Promise<number> =>
    tar.copy(dest, 0, n.dataOffset + offset, n.dataOffset + offset + length);
}

/** A temp dir removed at teardown, after lazily unmounting whatever is still mounted under it. */
async function tempDir(t: Test, prefix: string): Promise<string> {
  const tmp = await makeTempDir(prefix);
  t.teardown(async () => {
    for (const m of await mountsUnder(tmp)) await lazyUnmount(m.mountPoint).catch(() => undefined);
    await removeDir(tmp);
  });
  return tmp;
}

async function mountFor(t: Test, dir: string, tree: InodeTree, read: ReturnType<typeof memoryReader>, logger?: FsLogger): Promise<LayerFs> {
  await mkdir(dir, { recursive: true });
  const fs = new LayerFs(tree, read, { mountpoint: dir, label: 'test-layer', logger });
  await fs.mount();
  t.teardown(() => fs.unmount());
  return fs;
}

t.test('layer mount equals tar -x', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-');
  await execOk('python3', [fixture('make-layer.py'), tmp], { timeoutMs: 300_000 });
  const tarBytes = await readFile(join(tmp, 'layer.tar'));
  const extract = join(tmp, 'extract');
  await mkdir(extract);
  await execOk('sh', ['-c', `umask 022 && tar -x --xattrs --xattrs-include='*' --same-owner -p --numeric-owner -f "$1" -C "$2"`, 'sh', join(tmp, 'layer.tar'), extract]);
  const { entries } = readTar(tarBytes);
  const tree = buildInodeTree(entries);
  t.same(tree.warnings, [], 'the fixture has nothing tar -x would drop');

  const mnt = join(tmp, 'mnt');
  const logger = new CapturingLogger();
  await mountFor(t, mnt, tree, memoryReader(tarBytes), logger);
  const mounts = await mountsUnder(mnt);
  t.same(mounts.map((m) => [m.fsType, m.source]), [['fuse.soci', 'soci']], 'mounted as fuse.soci');

  const want = expectedFromExtract(await walk(extract));
  const got = await walk(mnt);
  t.ok(Object.keys(want).length > 20_000, `${Object.keys(want).length} paths compared`);
  // The fixture holds what it claims to (else the comparison below proves little).
  t.equal(want['pax/ns'].mtime_ns, '1600000000987654321', 'a PAX nanosecond mtime');
  t.same(want['dev/big'].rdev, [259, 300]);
  t.equal(want['modes/all'].mode, 0o7777);
  t.same(linkGroups(want), [['links/a', 'links/b', 'links/sub/c'], ['links/x', 'links/y']], 'two hardlink groups');
  t.equal(want['xattr/file'].xattrs['user.bin'], '0001ff');

  t.same(mismatches(got, want, comparable, 'mount'), [], 'type, mode, uid, gid, size, mtime (ns), target, rdev, nlink, xattrs, sha256');
  t.same(linkGroups(got), linkGroups(want), 'the same paths share an inode');
  t.same(got['wh/gone'], { ...want['wh/gone'], ino: got['wh/gone']?.ino }, 'a whiteout is a char device 0/0, mode 0');
  t.equal(got['wh/opq']?.xattrs['trusted.overlay.opaque'], '79', 'opaque dir has trusted.overlay.opaque=y');
  t.notOk(got['wh/.wh.gone'] || got['wh/opq/.wh..wh..opq'], 'whiteout entries are not listed');
  t.same(logger.lines.filter((l) => l.level === 'error'), [], 'no errors logged');

  // fuse-native as patched (third_party/fuse-native) carries seconds + nanoseconds to the kernel.
  t.test('mtime through FUSE equals tar -x to the nanosecond', async (t) => {
    const bad = Object.keys(want).filter((p) => got[p]?.mtime_ns !== want[p].mtime_ns);
    t.same(bad.slice(0, 5), [], `${bad.length} paths differ from the tar -x mtime`);
    t.equal(got['pax/ns'].mtime_ns, '1600000000987654321', 'the sub-millisecond digits of a PAX mtime');
    const st = await stat(join(mnt, 'pax/ns'), { bigint: true });
    t.equal(st.mtimeNs, 1600000000987654321n, 'fs.stat mtimeNs');
    t.equal(st.ctimeNs, st.mtimeNs, 'ctime repeats the mtime');
  });

  t.test('reads at odd offsets and past the end', async (t) => {
    const big = join(mnt, 'big/random.bin');
    const file = tarBytes.subarray(tree.byPath.get('/big/random.bin')?.dataOffset);
    const res = await execOk('python3', ['-c', READ_AT, big], {});
    const parts = JSON.parse(res.stdout) as string[];
    t.equal(parts[0], file.subarray(12345, 12345 + 300000).toString('hex').slice(0, 64), 'first bytes of an unaligned read');
    t.equal(parts[1], String(3 * (1 << 20) + 17 - 12345), 'read to the end stops at the size');
    t.equal(parts[2], '0', 'read past the end gives nothing');
  });
});

/** Reads via os.pread: an unaligned window, a read across EOF, and one beyond it. */
const READ_AT = `
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
a = os.pread(fd, 300000, 12345)
b = os.pread(fd, 1 << 24, 12345)
c = os.pread(fd, 100, 1 << 30)
print(json.dumps([a[:32].hex(), str(len(b)), str(len(c))]))
`;

/** A PAX tar whose mtimes need all of the patched encoding: negative seconds, nanosecond edges. */
const MAKE_TIMES_TAR = `
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    for name, mtime in (('pre-epoch', '-1000000000.25'), ('last-ns', '1700000000.999999999'), ('epoch', '0.000000001')):
        i = tarfile.TarInfo(name)
        i.size, i.pax_headers = 1, {'mtime': mtime}
        t.addfile(i, io.BytesIO(b'x'))
`;

t.test('pre-1970 and sub-microsecond mtimes through FUSE equal tar -x', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-times-');
  const tarPath = join(tmp, 'times.tar');
  await execOk('python3', ['-c', MAKE_TIMES_TAR, tarPath]);
  const extract = join(tmp, 'extract');
  await mkdir(extract);
  await execOk('tar', ['-x', '-f', tarPath, '-C', extract]);
  const tarBytes = await readFile(tarPath);
  const mnt = join(tmp, 'mnt');
  await mountFor(t, mnt, buildInodeTree(readTar(tarBytes).entries), memoryReader(tarBytes));
  const wantNs = { 'pre-epoch': -1000000000250000000n, 'last-ns': 1700000000999999999n, epoch: 1n };
  for (const [name, ns] of Object.entries(wantNs)) {
    const want = await stat(join(extract, name), { bigint: true });
    const got = await stat(join(mnt, name), { bigint: true });
    t.equal(want.mtimeNs, ns, `${name}: tar -x sets the PAX mtime`);
    t.equal(got.mtimeNs, want.mtimeNs, `${name}: mount mtime equals tar -x`);
    t.same([got.atimeNs, got.ctimeNs], [got.mtimeNs, got.mtimeNs], `${name}: atime and ctime repeat it`);
  }
});

t.test('a failing reader gives EIO and a log line; metadata still answers', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-eio-');
  const tree = buildInodeTree([
    { name: 'f', type: 'reg', uncompressedOffset: 512, uncompressedSize: 10, linkname: '', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', modTime: '2021-01-01T00:00:00Z', devmajor: 0, devminor: 0, xattrs: [] },
  ]);
  const logger = new CapturingLogger();
  const mnt = join(tmp, 'mnt');
  await mountFor(t, mnt, tree, async () => { throw new Error('span 3 digest mismatch'); }, logger);
  const cat = await execCapture('cat', [join(mnt, 'f')]);
  t.not(cat.code, 0);
  t.match(cat.stderr, /Input\/output error/);
  const stat = await execOk('stat', ['-c', '%s %a %i', join(mnt, 'f')]);
  t.equal(stat.stdout.trim(), '10 644 2');
  // The kernel may retry a failed read-ahead as a plain read: one line per failed FUSE read.
  const errors = logger.lines.filter((l) => l.level === 'error');
  t.ok(errors.length >= 1, `${errors.length} error lines`);
  for (const e of errors) t.match(e, { msg: 'read failed', obj: { layer: 'test-layer', path: '/f', offset: 0, err: 'span 3 digest mismatch' } });
});

t.test('a stale mountpoint left by a killed process is cleaned before mounting', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-stale-');
  const mnt = join(tmp, 'mnt');
  await mkdir(mnt);
  const layerFs = fileURLToPath(new URL('../../fs/layer-fs.js', import.meta.url));
  const treeMod = fileURLToPath(new URL('../../fs/inode-tree.js', import.meta.url));
  const script = `
    const { LayerFs } = await import(${JSON.stringify(layerFs)});
    const { buildInodeTree } = await import(${JSON.stringify(treeMod)});
    const fs = new LayerFs(buildInodeTree([]), async () => 0, { mountpoint: process.argv[1] });
    await fs.mount();
    console.log('mounted');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('mounted') && resolve());
    child.on('exit', (code) => reject(new Error(`mount child exited with ${code}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const dead = await execCapture('stat', ['-f', mnt]);
  t.match(dead.stderr, /Transport endpoint is not connected/, 'the killed mount is stale');

  const tree = buildInodeTree([
    { name: 'hello', type: 'reg', uncompressedOffset: 0, uncompressedSize: 5, linkname: '', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', modTime: '2021-01-01T00:00:00Z', devmajor: 0, devminor: 0, xattrs: [] },
  ]);
  const logger = new CapturingLogger();
  await mountFor(t, mnt, tree, memoryReader(Buffer.from('world')), logger);
  t.equal((await execOk('cat', [join(mnt, 'hello')])).stdout, 'world');
  t.ok(logger.lines.some((l) => l.msg === 'cleared a stale FUSE mount'));
});

t.test('xattr lookups: a disable-xattrs layer turns them off in the kernel; a layer with xattrs answers each', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-xattr-');
  const entry = (name: string, xattrs: { key: string; value: Uint8Array }[]) => ({
    name, type: 'reg' as const, uncompressedOffset: 512, uncompressedSize: 0, linkname: '', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '',
    modTime: '2021-01-01T00:00:00Z', devmajor: 0, devminor: 0, xattrs,
  });
  const probe = 'import errno, os, sys\nfor a in sys.argv[1:]:\n  p, n = a.rsplit(":", 1)\n  try: print(os.getxattr(p, n).hex(), os.listxattr(p))\n  except OSError as e: print(errno.errorcode[e.errno], os.listxattr(p))';
  const plain = join(tmp, 'plain');
  await mountFor(t, plain, buildInodeTree([entry('f', [])], { disableXattrs: true }), memoryReader(Buffer.alloc(0)));
  const withX = join(tmp, 'with');
  await mountFor(t, withX, buildInodeTree([entry('f', [{ key: 'SCHILY.xattr.user.a', value: Buffer.from([1, 2]) }])]), memoryReader(Buffer.alloc(0)));
  const out = await execOk('python3', ['-c', probe, `${plain}/f:user.a`, `${plain}/f:trusted.overlay.opaque`, `${withX}/f:user.a`, `${withX}/f:user.b`]);
  // Python names errno 95 (EOPNOTSUPP on Linux) ENOTSUP; the old answer was ENODATA.
  t.same(out.stdout.trim().split('\n'), [
    'ENOTSUP []',
    'ENOTSUP []',
    "0102 ['user.a']",
    "ENODATA ['user.a']",
  ]);
});

t.test('getattr is answered by the addon from the stat table, and counted in the op metrics', async (t) => {
  const tmp = await tempDir(t, 'soci-layerfs-table-');
  const tree = buildInodeTree([
    { name: 'dir/f', type: 'reg', uncompressedOffset: 512, uncompressedSize: 10, linkname: '', mode: 0o640, uid: 7, gid: 8, uname: '', gname: '', modTime: '2021-01-01T00:00:00.123456789Z', devmajor: 0, devminor: 0, xattrs: [] },
  ]);
  const counted: string[] = [];
  const fs = new LayerFs(tree, memoryReader(Buffer.alloc(1024)), {
    mountpoint: join(tmp, 'mnt'), label: 'test-layer',
    opMetrics: { op: (name, n = 1) => void counted.push(`${name} x${n}`), error: (name, errno, n = 1) => void counted.push(`${name} ${errno} x${n}`) },
  });
  await mkdir(join(tmp, 'mnt'));
  await fs.mount();
  t.teardown(() => fs.unmount());
  const st = await stat(join(tmp, 'mnt', 'dir', 'f'), { bigint: true });
  t.same([st.mode & 0o7777n, st.uid, st.gid, st.size, st.mtimeNs], [0o640n, 7n, 8n, 10n, 1609459200123456789n], 'stat from the table');
  await t.rejects(stat(join(tmp, 'mnt', 'dir', 'nope')), { code: 'ENOENT' });
  const { found, missing } = fs.tableLookups();
  t.ok(found >= 2, `${found} paths found by the addon (dir, dir/f)`);
  t.equal(missing, 1, 'one missing path');
  await fs.unmount();
  const getattrs = counted.filter((c) => c.startsWith('getattr x')).reduce((n, c) => n + Number(c.split('x')[1]), 0);
  t.equal(getattrs, found + missing, 'op metrics: every getattr the addon answered');
  t.ok(counted.includes('getattr -2 x1'), 'op metrics: the ENOENT');
});
