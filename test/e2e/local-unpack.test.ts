/**
 * unpackLayer against `tar -x` (as root, with xattrs and owners): a rich layer (make-layer.py)
 * as gzip, multi-member gzip, zstd and uncompressed is walked field by field; whiteouts must
 * come out as overlayfs wants them, and a real overlay mount of two unpacked layers must hide
 * what they white out. Bad input must fail with a SociError and write nothing outside `dir`.
 *
 * mtime precision: Node 20's utimes (libuv 1.46) sets whole microseconds, so mtimes equal
 * tar -x's truncated to the microsecond (pre-1970 times, set via `touch`, are exact).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CapturingLogger } from '../helpers/capturing-logger.js';
import t from 'tap';
import { SociError } from '../../errors/errors.js';
import { unpackLayer, type UnpackResult } from '../../daemon/local-unpack.js';
import { readTar } from '../../ztoc/tar-reader.js';
import { execCapture, execOk } from '../helpers/exec.js';
import { compress, MEDIA_TYPES, sha256Digest, type Compression } from '../helpers/images.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

import { fixture, walk, expectedFromExtract, linkGroups, mismatches, type Tree, type Walked } from '../helpers/tree-walk.js';


/** Everything but inode numbers (compared as link groups) and mtime (compared with a tolerance). */
function comparable(e: Walked): Omit<Walked, 'ino' | 'mtime_ns'> {
  const { ino: _ino, mtime_ns: _m, ...rest } = e;
  return rest;
}

/** Paths whose mtime is not the tar's truncated to the microsecond. */
function mtimeErrors(got: Tree, want: Tree): { bad: string[]; exact: number } {
  const bad: string[] = [];
  let exact = 0;
  for (const [p, w] of Object.entries(want)) {
    if (!got[p]) continue;
    if (got[p].mtime_ns === w.mtime_ns) exact++;
    if (BigInt(got[p].mtime_ns) !== truncUs(w.mtime_ns)) bad.push(`${p}: ${got[p].mtime_ns} vs ${w.mtime_ns}`);
  }
  return { bad, exact };
}

const truncUs = (ns: string): bigint => (BigInt(ns) / 1000n) * 1000n;

/** The blob as a registry stream would hand it over: in chunks of an odd size. */
async function* chunks(buf: Buffer, size = 65_521): AsyncIterable<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function rejection(p: Promise<unknown>): Promise<SociError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SociError) return err;
    throw new Error(`expected a SociError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a rejection');
}

async function tarX(tarPath: string, dir: string): Promise<void> {
  await mkdir(dir);
  await execOk('sh', ['-c', `umask 022 && tar -x --xattrs --xattrs-include='*' --same-owner -p --numeric-owner -f "$1" -C "$2"`, 'sh', tarPath, dir]);
}

t.test('a rich layer unpacks like tar -x, for every compression', async (t) => {
  const tmp = await makeTempDir('soci-unpack-');
  t.teardown(() => removeDir(tmp));
  await execOk('python3', [fixture('make-layer.py'), tmp, '--small', '3000'], { timeoutMs: 300_000 });
  const tarPath = join(tmp, 'layer.tar');
  const tar = await readFile(tarPath);
  const extract = join(tmp, 'extract');
  await tarX(tarPath, extract);
  const want = expectedFromExtract(await walk(extract));
  // The fixture holds what it claims to, else the comparisons prove little.
  t.ok(Object.keys(want).length > 3000, `${Object.keys(want).length} paths compared`);
  t.equal(want['pax/ns'].mtime_ns, '1600000000987654321', 'a PAX nanosecond mtime');
  t.same(want['dev/big'].rdev, [259, 300]);
  t.equal(want['modes/all'].mode, 0o7777);
  t.equal(want['modes/suid'].mode, 0o4755);
  t.same(want['owners/big'], { ...want['owners/big'], uid: 123456, gid: 654321 });
  t.same(linkGroups(want), [['links/a', 'links/b', 'links/sub/c'], ['links/x', 'links/y']], 'two hardlink groups');
  t.equal(want['xattr/file'].xattrs['user.bin'], '0001ff');
  t.equal(want['dup/d'].xattrs['user.c'], Buffer.from('new').toString('hex'), 'a duplicate dir merges xattrs');

  const spool = join(tmp, 'spool');
  await mkdir(spool);
  const entries = readTar(tar).entries.length;
  const compressions: Compression[] = ['gzip', 'gzip-multi', 'zstd', 'none'];
  for (const c of compressions) {
    t.test(c, async (t) => {
      const blob = await compress(tar, c);
      const dir = join(tmp, `unpack-${c}`);
      await mkdir(dir);
      const logger = new CapturingLogger();
      const res: UnpackResult = await unpackLayer(chunks(blob, c === 'none' ? 777 : 65_521), MEDIA_TYPES.layer[c], dir, {
        tmpDir: spool,
        logger,
        expectedDiffId: sha256Digest(tar),
      });
      t.equal(res.diffId, sha256Digest(tar), 'diffID is the sha256 of the tar');
      t.equal(res.bytes, tar.length, 'bytes: the uncompressed size');
      t.equal(res.entries, entries, 'entries: every tar header');
      t.ok(res.ms >= 0);
      const got = await walk(dir);
      t.same(mismatches(got, want, comparable, 'unpack').slice(0, 10), [], 'type, mode, uid, gid, size, target, rdev, nlink, xattrs, sha256');
      t.same(linkGroups(got), linkGroups(want), 'the same paths share an inode');
      const m = mtimeErrors(got, want);
      t.same(m.bad.slice(0, 5), [], `mtime = tar -x's truncated to the microsecond (${m.exact}/${Object.keys(want).length} exact to the ns)`);
      t.same(comparable(got['wh/gone']), { type: 'char', mode: 0, uid: 5, gid: 6, nlink: 1, rdev: [0, 0], xattrs: {} }, 'a whiteout is char 0/0 mode 0');
      const opq = await execOk('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(dir, 'wh/opq')]);
      t.equal(opq.stdout, 'y', 'getfattr: the opaque dir has trusted.overlay.opaque=y');
      t.notOk(got['wh/.wh.gone'] || got['wh/opq/.wh..wh..opq'], 'no whiteout entries as files');
      t.same(await readdir(spool), [], 'the spooled tar is removed');
      t.same(logger.lines.filter((l) => l.level !== 'info'), [], 'nothing dropped or skipped');
      t.match(logger.lines, [{ level: 'info', msg: 'layer unpacked locally', obj: { diffId: res.diffId, dir } }]);
    });
  }
});

t.test('bad input gives a clear SociError and writes nothing outside dir', async (t) => {
  const tmp = await makeTempDir('soci-unpack-bad-');
  t.teardown(() => removeDir(tmp));
  await execOk('python3', [fixture('make-unpack-layers.py'), tmp]);
  const spool = join(tmp, 'spool');
  await mkdir(spool);
  const good = await readFile(join(tmp, 'lower.tar'));
  let n = 0;
  /** A fresh sandbox: box/dir is the target, box/outside a dir a bad tar may aim at. */
  const sandbox = async (): Promise<{ box: string; dir: string; outside: string }> => {
    const box = join(tmp, `box${n++}`);
    await mkdir(join(box, 'dir'), { recursive: true });
    await mkdir(join(box, 'outside'));
    return { box, dir: join(box, 'dir'), outside: join(box, 'outside') };
  };
  const expectFailure = async (name: string, blob: AsyncIterable<Uint8Array>, mediaType: string, kind: string, msg: RegExp, expectedDiffId?: string): Promise<void> => {
    const s = await sandbox();
    const err = await rejection(unpackLayer(blob, mediaType, s.dir, { tmpDir: spool, expectedDiffId }));
    t.equal(err.kind, kind, `${name}: kind`);
    t.match(err.message, msg, `${name}: ${err.message}`);
    t.same((await readdir(s.box)).sort(), ['dir', 'outside'], `${name}: nothing new beside dir`);
    t.same(await readdir(s.outside), [], `${name}: nothing in the dir outside`);
    t.same(await readdir(spool), [], `${name}: the spooled tar is removed`);
  };

  const gz = await compress(good, 'gzip');
  await expectFailure('truncated gzip', chunks(gz.subarray(0, gz.length - 40)), MEDIA_TYPES.layer.gzip, 'invalid-argument', /gzip stream is corrupt or truncated/);
  const flipped = Buffer.from(gz);
  flipped[Math.floor(flipped.length / 2)] ^= 0xff;
  await expectFailure('corrupt gzip', chunks(flipped), MEDIA_TYPES.layer.gzip, 'invalid-argument', /gzip stream is corrupt or truncated/);
  await expectFailure('not gzip at all', chunks(good), MEDIA_TYPES.layer.gzip, 'invalid-argument', /gzip stream is corrupt or truncated: incorrect header check/);
  const zst = await compress(good, 'zstd');
  await expectFailure('truncated zstd', chunks(zst.subarray(0, zst.length - 10)), MEDIA_TYPES.layer.zstd, 'invalid-argument', /zstd stream is corrupt or truncated: zstd exited with 1/);
  await expectFailure('truncated tar', chunks(good.subarray(0, 1024 + 5)), MEDIA_TYPES.layer.none, 'invalid-argument', /tar stream truncated/);
  await expectFailure('garbage tar', chunks(Buffer.alloc(4096, 7)), MEDIA_TYPES.layer.none, 'invalid-argument', /not a tar archive/);
  await expectFailure('unknown media type', chunks(gz), 'application/vnd.oci.image.layer.v1.tar+encrypted', 'invalid-argument', /is not a gzip, zstd or uncompressed tar/);

  const escape = await readFile(join(tmp, 'escape.tar'));
  await expectFailure('../escape', chunks(await compress(escape, 'gzip')), MEDIA_TYPES.layer.gzip, 'invalid-argument', /tar entry "..\/escape": ".." component/);
  const through = await readFile(join(tmp, 'through-symlink.tar'));
  await expectFailure('file through a symlink', chunks(through), MEDIA_TYPES.layer.none, 'invalid-argument', /tar entry "link\/planted": parent "link" is a symlink/);

  await expectFailure('wrong diffID', chunks(gz), MEDIA_TYPES.layer.gzip, 'invalid-argument', /uncompressed digest sha256:[0-9a-f]{64} does not match the expected diffID sha256:0{64}/, `sha256:${'0'.repeat(64)}`);

  // The caller's stream fails at its end (as streamBlob does on a digest mismatch): that error, unchanged.
  const streamErr = new SociError('failed-precondition', 'blob sha256:abc: digest mismatch');
  async function* failing(buf: Buffer): AsyncIterable<Uint8Array> {
    yield* chunks(buf);
    throw streamErr;
  }
  for (const [c, blob] of [['gzip', gz], ['zstd', zst], ['none', good]] as const) {
    const s = await sandbox();
    const err = await rejection(unpackLayer(failing(blob), MEDIA_TYPES.layer[c], s.dir, { tmpDir: spool }));
    t.equal(err, streamErr, `${c}: the stream's own error is passed on`);
    t.same(await readdir(s.dir), [], `${c}: dir untouched`);
    t.same(await readdir(spool), [], `${c}: spool cleaned`);
  }

  const s = await sandbox();
  await writeFile(join(s.dir, 'x'), 'x');
  const err = await rejection(unpackLayer(chunks(gz), MEDIA_TYPES.layer.gzip, s.dir, { tmpDir: spool }));
  t.equal(err.kind, 'failed-precondition');
  t.match(err.message, /unpack target .*: not empty/);
});

t.test('pre-1970 and nanosecond mtimes', async (t) => {
  const tmp = await makeTempDir('soci-unpack-times-');
  t.teardown(() => removeDir(tmp));
  await execOk('python3', [fixture('make-unpack-layers.py'), tmp]);
  const dir = join(tmp, 'dir');
  await mkdir(dir);
  await unpackLayer(chunks(await readFile(join(tmp, 'old-times.tar'))), MEDIA_TYPES.layer.none, dir, { tmpDir: tmp });
  await tarX(join(tmp, 'old-times.tar'), join(tmp, 'x'));
  const [got, want] = [await walk(dir), await walk(join(tmp, 'x'))];
  t.equal(want['pre-epoch'].mtime_ns, '-1000000000250000000', 'tar -x sets the pre-1970 time');
  t.equal(got['pre-epoch'].mtime_ns, want['pre-epoch'].mtime_ns, 'pre-1970: exact');
  t.equal(got.whole.mtime_ns, '1234567890000000000', 'whole seconds: exact');
  t.equal(want.ns.mtime_ns, '1700000000000000001');
  t.equal(got.ns.mtime_ns, '1700000000000000000', '1 ns past a second: truncated to the microsecond');
});

t.test('overlayfs honours the unpacked whiteouts and opaque dirs', async (t) => {
  const tmp = await makeTempDir('soci-unpack-ovl-');
  const mnt = join(tmp, 'mnt');
  t.teardown(async () => {
    await execCapture('umount', [mnt]);
    await removeDir(tmp);
  });
  await execOk('python3', [fixture('make-unpack-layers.py'), tmp]);
  for (const name of ['lower', 'upper']) {
    await mkdir(join(tmp, name));
    const blob = await compress(await readFile(join(tmp, `${name}.tar`)), 'gzip');
    await unpackLayer(chunks(blob), MEDIA_TYPES.layer.gzip, join(tmp, name), { tmpDir: tmp });
  }
  await mkdir(mnt);
  await execOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(tmp, 'upper')}:${join(tmp, 'lower')}`, mnt]);
  t.same((await readdir(join(mnt, 'a'))).sort(), ['keep'], 'the whiteout hides a/gone');
  t.equal(await readFile(join(mnt, 'a/keep'), 'utf8'), 'lower keep\n');
  t.same((await readdir(join(mnt, 'opq'))).sort(), ['new'], 'the opaque dir hides the lower dir');
  t.same((await readdir(join(mnt, 'plain'))).sort(), ['lower-only', 'upper-only'], 'a plain dir merges');
  t.equal(await readFile(join(mnt, 'opq/new'), 'utf8'), 'upper new\n');
});
