import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { SociError } from '../../errors/errors.js';
import { TarReader, readTar } from '../../ztoc/tar-reader.js';
import { parseNumeric } from '../../ztoc/tar-header.js';
import type { FileMetadata } from '../../ztoc/types.js';

const ENV = { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tar-reader-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const src = path.join(tmp, 'src');

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const LONG_DIR = 'd'.repeat(150);
const LONG_FILE = 'f'.repeat(120);
const LONG_NAME200 = 'n'.repeat(200);
const LONG_TARGET = `/${'t'.repeat(99)}/${'u'.repeat(200)}`;
const MED_DIR = 'm'.repeat(80);
const MED_FILE = 'q'.repeat(90);
const UTF8_NAME = 'héllo-世界-🎉.txt';

function write(rel: string, data: Uint8Array | string, mode?: number): void {
  const p = path.join(src, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  if (mode !== undefined) fs.chmodSync(p, mode);
}

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** basic/: fits every format; special/: devices and fifo; medium/: ustar prefix; long/: needs PAX or GNU. */
function buildTree(): void {
  write('basic/empty', '');
  write('basic/one', 'x');
  write('basic/b511', randomBytes(511));
  write('basic/b512', randomBytes(512));
  write('basic/b513', randomBytes(513));
  write('basic/big', randomBytes(300_000));
  write('basic/sub/nested.txt', 'nested\n');
  write(`basic/${UTF8_NAME}`, 'utf8 name\n');
  write('basic/suid', '#!/bin/sh\n', 0o4755);
  write('basic/nano', 'nanoseconds\n');
  sh('touch', ['-d', '2021-03-04 05:06:07.123456789', path.join(src, 'basic/nano')]);
  fs.symlinkSync('one', path.join(src, 'basic/link'));
  fs.linkSync(path.join(src, 'basic/b513'), path.join(src, 'basic/hard'));
  fs.mkdirSync(path.join(src, 'basic/sgid'));
  fs.chmodSync(path.join(src, 'basic/sgid'), 0o2755);
  fs.mkdirSync(path.join(src, 'basic/sticky'));
  fs.chmodSync(path.join(src, 'basic/sticky'), 0o1777);

  fs.mkdirSync(path.join(src, 'special'));
  sh('mknod', [path.join(src, 'special/cdev'), 'c', '1', '3']);
  sh('mknod', [path.join(src, 'special/bdev'), 'b', '7', '0']);
  sh('mkfifo', [path.join(src, 'special/fifo')]);

  write(`medium/${MED_DIR}/${MED_FILE}`, 'medium\n');

  write(`long/${LONG_DIR}/${LONG_FILE}`, randomBytes(1000));
  write(`long/${LONG_NAME200}`, 'long name\n');
  fs.symlinkSync(LONG_TARGET, path.join(src, 'long/longlink'));
  fs.linkSync(path.join(src, `long/${LONG_DIR}/${LONG_FILE}`), path.join(src, `long/${LONG_NAME200}.hard`));
}

function gnuTar(name: string, format: string, dirs: string[], extra: string[] = []): Buffer {
  const out = path.join(tmp, name);
  sh('tar', [`--format=${format}`, ...extra, '-cf', out, '-C', src, ...dirs]);
  return fs.readFileSync(out);
}

/** Reference listing by Python's tarfile (an independent tar reader). */
const PY_LIST = String.raw`
import tarfile, sys, json, datetime
from decimal import Decimal, ROUND_FLOOR
def gotime(sec, nsec):
    dt = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    s = f'{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}'
    frac = f'{nsec:09d}'.rstrip('0')
    return s + ('.' + frac if frac else '') + 'Z'
out = []
with tarfile.open(sys.argv[1], 'r:') as tf:
    for m in tf:
        if m.pax_headers.get('mtime'):
            d = Decimal(m.pax_headers['mtime'])
            sec = int(d.to_integral_value(rounding=ROUND_FLOOR))
            nsec = int((d - sec) * 10**9)
        else:
            sec, nsec = int(m.mtime), 0
        out.append(dict(name=m.name, type=m.type.decode('latin1'), size=m.size, mode=m.mode,
            uid=m.uid, gid=m.gid, uname=m.uname, gname=m.gname, modTime=gotime(sec, nsec),
            linkname=m.linkname, devmajor=m.devmajor, devminor=m.devminor, offset=m.offset_data,
            pax={k: v.encode('utf-8', 'surrogateescape').hex() for k, v in m.pax_headers.items()}))
    end = tf.offset
print(json.dumps(dict(entries=out, end=end)))
`;

interface PyEntry {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  modTime: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  offset: number;
  pax: Record<string, string>;
}

function pyList(file: string): { entries: PyEntry[]; end: number } {
  const script = path.join(tmp, 'list.py');
  fs.writeFileSync(script, PY_LIST);
  return JSON.parse(execFileSync('python3', [script, file], { env: ENV, maxBuffer: 1 << 26 }).toString());
}

const PY_TYPES: Record<string, FileMetadata['type']> = {
  '0': 'reg',
  '\0': 'reg',
  '7': 'reg',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Field-by-field equality with Python's listing, plus data bytes checked against the file on disk. */
function compareWithPython(t: Test, file: string, tar: Buffer, got: { entries: FileMetadata[]; size: number }, root: string | null) {
  const py = pyList(file);
  t.equal(got.entries.length, py.entries.length, 'entry count');
  t.equal(got.size, py.end + 1024, 'size = end-of-archive offset + two zero blocks');
  py.entries.forEach((p, i) => {
    const e = got.entries[i];
    const type = PY_TYPES[p.type];
    t.equal(e.type, type, `type of ${p.name}`);
    // Python strips trailing slashes from directory names; Go (and we) keep them.
    t.equal(type === 'dir' ? e.name.replace(/\/+$/, '') || '/' : e.name, p.name, `name of ${p.name}`);
    t.same(
      {
        size: e.uncompressedSize, offset: e.uncompressedOffset, mode: e.mode, uid: e.uid, gid: e.gid, uname: e.uname,
        gname: e.gname, modTime: e.modTime, linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor,
      },
      {
        size: type === 'reg' ? p.size : 0, offset: p.offset, mode: p.mode, uid: p.uid, gid: p.gid, uname: p.uname,
        gname: p.gname, modTime: p.modTime, linkname: p.linkname, devmajor: p.devmajor, devminor: p.devminor,
      },
      `fields of ${p.name}`,
    );
    t.same(Object.fromEntries(e.xattrs.map((x) => [x.key, hex(x.value)])), p.pax, `pax records of ${p.name}`);
    const keys = e.xattrs.map((x) => Buffer.from(x.key));
    t.ok(keys.every((k, j) => j === 0 || Buffer.compare(keys[j - 1], k) < 0), `records of ${p.name} sorted by key bytes`);
  });
  for (const e of got.entries) {
    if (e.type !== 'reg' || root === null) continue;
    const onDisk = fs.readFileSync(path.join(root, e.name));
    t.equal(e.uncompressedSize, onDisk.length, `size of ${e.name}`);
    t.equal(sha(tar.subarray(e.uncompressedOffset, e.uncompressedOffset + e.uncompressedSize)), sha(onDisk), `data of ${e.name}`);
  }
}

function feed(tar: Uint8Array, chunk: number): { entries: FileMetadata[]; size: number } {
  const r = new TarReader();
  for (let i = 0; i < tar.length; i += chunk) r.push(tar.subarray(i, i + chunk));
  return { entries: r.entries, size: r.end() };
}

function byName(entries: FileMetadata[], suffix: string): FileMetadata {
  const e = entries.find((x) => x.name === suffix || x.name.endsWith(`/${suffix}`));
  if (e === undefined) throw new Error(`no entry ${suffix}`);
  return e;
}

function throwsSoci(t: Test, fn: () => unknown, re: RegExp, what: string) {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (err) {
    t.ok(err instanceof SociError, `${what}: SociError`);
    t.equal((err as SociError).kind, 'invalid-argument', `${what}: kind`);
    t.match((err as Error).message, re, `${what}: message`);
    t.notMatch((err as Error).message, /\n/, `${what}: one line`);
  }
}

buildTree();
const tars: Record<string, Buffer> = {
  pax: gnuTar('pax.tar', 'pax', ['basic', 'special', 'medium', 'long']),
  gnu: gnuTar('gnu.tar', 'gnu', ['basic', 'special', 'long']),
  ustar: gnuTar('ustar.tar', 'ustar', ['basic', 'special', 'medium']),
  v7: gnuTar('v7.tar', 'v7', ['basic']),
};

for (const [format, tar] of Object.entries(tars)) {
  t.test(`GNU tar --format=${format} matches Python tarfile and the files on disk`, async (t) => {
    const got = readTar(tar);
    compareWithPython(t, path.join(tmp, `${format}.tar`), tar, got, src);
  });
}

t.test('explicit field values', async (t) => {
  const pax = readTar(tars.pax).entries;
  const gnu = readTar(tars.gnu).entries;
  const ustar = readTar(tars.ustar).entries;
  const v7 = readTar(tars.v7).entries;
  t.equal(byName(pax, 'nano').modTime, '2021-03-04T05:06:07.123456789Z');
  t.equal(byName(gnu, 'nano').modTime, '2021-03-04T05:06:07Z');
  for (const list of [pax, gnu, ustar, v7]) {
    t.equal(byName(list, 'suid').mode, 0o4755);
    t.equal(byName(list, 'sgid/').mode, 0o2755);
    t.equal(byName(list, 'sticky/').mode, 0o1777);
    t.equal(byName(list, 'sgid/').type, 'dir');
    t.equal(byName(list, 'link').type, 'symlink');
    t.equal(byName(list, 'link').linkname, 'one');
    t.ok(list.some((e) => e.name === `basic/${UTF8_NAME}`), 'UTF-8 name');
    const hard = list.filter((e) => e.type === 'hardlink' && e.name.startsWith('basic/'));
    t.equal(hard.length, 1);
    t.equal(hard[0].uncompressedSize, 0);
    t.match(hard[0].linkname, /^basic\/(b513|hard)$/);
  }
  for (const list of [pax, gnu, ustar]) {
    t.same([byName(list, 'cdev').type, byName(list, 'cdev').devmajor, byName(list, 'cdev').devminor], ['char', 1, 3]);
    t.same([byName(list, 'bdev').type, byName(list, 'bdev').devmajor, byName(list, 'bdev').devminor], ['block', 7, 0]);
    t.equal(byName(list, 'fifo').type, 'fifo');
    t.equal(byName(list, 'basic/').uname, 'root');
  }
  t.equal(byName(v7, 'basic/').uname, '', 'v7 has no uname');
  for (const list of [pax, ustar]) t.ok(list.some((e) => e.name === `medium/${MED_DIR}/${MED_FILE}`), 'prefix + name');
  for (const list of [pax, gnu]) {
    const deep = `long/${LONG_DIR}/${LONG_FILE}`;
    t.ok(deep.length > 255);
    t.ok(list.some((e) => e.name === deep), 'name > 255');
    t.ok(list.some((e) => e.name === `long/${LONG_NAME200}`), '200-char component');
    t.equal(byName(list, 'longlink').linkname, LONG_TARGET, 'long symlink target');
    const hard = list.filter((e) => e.type === 'hardlink' && e.name.startsWith('long/'));
    t.equal(hard.length, 1);
    t.ok(hard[0].linkname.length > 100, 'long hardlink target');
  }
  t.equal(byName(pax, `long/${LONG_NAME200}`).xattrs.find((x) => x.key === 'path')?.value.toString(), `long/${LONG_NAME200}`);
});

t.test('chunk boundaries do not change the result', async (t) => {
  for (const format of ['pax', 'gnu']) {
    const whole = readTar(tars[format]);
    for (const chunk of [1, 7, 511, 512, 4096]) t.same(feed(tars[format], chunk), whole, `${format} in ${chunk}-byte chunks`);
  }
});

/** Odd archives only Python's tarfile writes. */
const PY_MAKE = String.raw`
import tarfile, io, sys, os
out = sys.argv[1]
def add(tf, name, data=b'', **kw):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 1600000000
    for k, v in kw.items(): setattr(ti, k, v)
    tf.addfile(ti, io.BytesIO(data) if data else None)
with tarfile.open(os.path.join(out, 'xattrs.tar'), 'w', format=tarfile.PAX_FORMAT) as tf:
    add(tf, 'x.txt', b'hello', pax_headers={'SCHILY.xattr.user.foo': 'bar',
        'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\udcff',
        'SCHILY.xattr.user.\uffff': 'a', 'SCHILY.xattr.user.\U0001F600': 'b'})
    add(tf, 'neg', b'', mtime=-1.5)
    add(tf, 'frac', b'z', mtime=1600000000.25)
with tarfile.open(os.path.join(out, 'biguid.tar'), 'w', format=tarfile.GNU_FORMAT) as tf:
    add(tf, 'big', b'data', uid=2**30, gid=2**40 + 5, mtime=-1000000000)
with tarfile.open(os.path.join(out, 'types.tar'), 'w', format=tarfile.USTAR_FORMAT) as tf:
    add(tf, 'contig', b'cont', type=tarfile.CONTTYPE)
    add(tf, 'olddir/', b'', type=tarfile.AREGTYPE)
    add(tf, 'oldfile', b'old', type=tarfile.AREGTYPE)
    add(tf, 'slash0/', b'', type=tarfile.REGTYPE)
with tarfile.open(os.path.join(out, 'global.tar'), 'w', format=tarfile.PAX_FORMAT,
                  pax_headers={'comment': 'global-c', 'uname': 'gluser'}) as tf:
    add(tf, 'a', b'A')
    add(tf, 'b', b'B', pax_headers={'comment': 'local'})
    add(tf, 'c', b'C')
with tarfile.open(os.path.join(out, 'hugepax.tar'), 'w', format=tarfile.PAX_FORMAT) as tf:
    add(tf, 'h', b'', pax_headers={'comment': 'x' * (1 << 20)})
`;

const pyDir = path.join(tmp, 'py');
fs.mkdirSync(pyDir);
fs.writeFileSync(path.join(tmp, 'make.py'), PY_MAKE);
execFileSync('python3', [path.join(tmp, 'make.py'), pyDir], { env: ENV });
const pyTar = (name: string) => fs.readFileSync(path.join(pyDir, name));

t.test('PAX xattrs: raw bytes, byte-order sorted, fractional and negative mtimes', async (t) => {
  const tar = pyTar('xattrs.tar');
  const got = readTar(tar);
  compareWithPython(t, path.join(pyDir, 'xattrs.tar'), tar, got, null);
  const x = got.entries[0];
  t.same(
    x.xattrs.map((r) => [r.key, hex(r.value)]),
    [
      ['SCHILY.xattr.security.capability', '01000002ff'],
      ['SCHILY.xattr.user.foo', hex(Buffer.from('bar'))],
      ['SCHILY.xattr.user.\uffff', hex(Buffer.from('a'))],
      ['SCHILY.xattr.user.\u{1F600}', hex(Buffer.from('b'))],
      ['hdrcharset', hex(Buffer.from('BINARY'))],
    ],
  );
  t.equal(x.uncompressedSize, 5);
  t.equal(tar.subarray(x.uncompressedOffset, x.uncompressedOffset + 5).toString(), 'hello');
  t.equal(got.entries[1].modTime, '1969-12-31T23:59:58.5Z');
  t.equal(got.entries[2].modTime, '2020-09-13T12:26:40.25Z');
});

t.test('GNU base-256 numbers', async (t) => {
  const tar = pyTar('biguid.tar');
  const got = readTar(tar);
  t.equal(got.entries[0].uid, 2 ** 30);
  t.equal(got.entries[0].gid, 2 ** 40 + 5);
  t.equal(got.entries[0].modTime, '1938-04-24T22:13:20Z');
  t.equal(tar[108] & 0x80, 0x80, 'uid field is base-256');
  t.equal(tar[136], 0xff, 'mtime field is negative base-256');
  const field = (bytes: number[]) => parseNumeric(Uint8Array.from(bytes), 0, bytes.length);
  t.equal(field([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x07]), 2 ** 33 + 7, '12-byte size beyond octal range');
  t.equal(field([0x80, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]), 0x123456789abcde);
  t.equal(field([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), -1);
  t.ok(Number.isNaN(field([0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), 'overflow');
  t.equal(field([0x30, 0x37, 0x37, 0x20, 0]), 0o77, 'octal with padding');
  t.ok(Number.isNaN(field([0x39, 0])), 'bad octal digit');
});

t.test("type mapping: '7' and '\\0' are regular, '\\0' with a trailing slash is a dir", async (t) => {
  const tar = pyTar('types.tar');
  const got = readTar(tar);
  t.same(
    got.entries.map((e) => [e.name, e.type, e.uncompressedSize]),
    [
      ['contig', 'reg', 4],
      ['olddir/', 'dir', 0],
      ['oldfile', 'reg', 3],
      // Go only applies the legacy trailing-slash rule to '\0'; '0' stays a regular file.
      ['slash0/', 'reg', 0],
    ],
  );
  t.equal(tar.subarray(got.entries[0].uncompressedOffset, got.entries[0].uncompressedOffset + 4).toString(), 'cont');
});

t.test('PAX global records are defaults for every following entry', async (t) => {
  const got = readTar(pyTar('global.tar'));
  const view = got.entries.map((e) => [e.name, e.uname, Object.fromEntries(e.xattrs.map((x) => [x.key, x.value.toString()]))]);
  t.same(view, [
    ['a', 'gluser', { comment: 'global-c', uname: 'gluser' }],
    ['b', 'gluser', { comment: 'local', uname: 'gluser' }],
    ['c', 'gluser', { comment: 'global-c', uname: 'gluser' }],
  ]);
});

t.test('unsupported entry types fail naming the entry and the type', async (t) => {
  fs.mkdirSync(path.join(tmp, 'sp'));
  sh('truncate', ['-s', '10M', path.join(tmp, 'sp/sparse.img')]);
  fs.appendFileSync(path.join(tmp, 'sp/sparse.img'), 'tail');
  const mk = (format: string) => {
    const out = path.join(tmp, `sparse-${format}.tar`);
    sh('tar', [`--format=${format}`, '--sparse', '-cf', out, '-C', path.join(tmp, 'sp'), 'sparse.img']);
    return fs.readFileSync(out);
  };
  throwsSoci(t, () => readTar(mk('gnu')), /^tar entry "sparse\.img" has unsupported type 'S' \(GNU sparse\)$/, 'GNU sparse');
  throwsSoci(t, () => readTar(mk('pax')), /^tar entry "sparse\.img" has unsupported type '0' \(PAX GNU sparse/, 'PAX sparse');
  const vol = gnuTar('vol.tar', 'gnu', ['basic/one'], ['-V', 'myvolume']);
  throwsSoci(t, () => readTar(vol), /^tar entry "myvolume" has unsupported type 'V' \(GNU volume header\)$/, 'volume');
});

t.test('malformed streams', async (t) => {
  const pax = tars.pax;
  const big = byName(readTar(pax).entries, 'basic/big');
  throwsSoci(t, () => readTar(pax.subarray(0, big.uncompressedOffset + 1000)), /^tar stream truncated in entry "basic\/big" \(299000 data bytes missing\)$/, 'cut in data');
  throwsSoci(t, () => readTar(pax.subarray(0, big.uncompressedOffset - 100)), /^tar stream truncated in the header block at offset \d+$/, 'cut in header');
  throwsSoci(t, () => readTar(pax.subarray(0, 520)), /^tar stream truncated in the PAX header record at offset 0$/, 'cut in PAX record');
  throwsSoci(t, () => readTar(pax.subarray(0, 1024)), /^tar stream ends after the PAX\/GNU long-name header at offset 0 with no entry$/, 'PAX without entry');
  throwsSoci(t, () => readTar(randomBytes(4096)), /^not a tar archive: /, 'random bytes');
  throwsSoci(t, () => readTar(Buffer.from('hello world\n'.repeat(100))), /^not a tar archive: /, 'text');
  throwsSoci(t, () => readTar(gzipSync(pax)), /^not a tar archive: /, 'gzip');
  throwsSoci(t, () => readTar(new Uint8Array(0)), /^not a tar archive: the stream is empty$/, 'empty');
  const bad = Buffer.from(tars.gnu);
  const second = readTar(tars.gnu).entries[0].uncompressedOffset; // first entry is a dir: next header right after
  bad[second + 3] ^= 0x01;
  throwsSoci(t, () => readTar(bad), new RegExp(`^tar header at offset ${second} has a bad checksum$`), 'bad checksum');
  const afterZero = Buffer.concat([Buffer.alloc(512), tars.gnu]);
  throwsSoci(t, () => readTar(afterZero), /^tar stream has data after an end-of-archive zero block, at offset 512$/, 'zero then data');
  throwsSoci(t, () => readTar(pyTar('hugepax.tar')), /^tar PAX header record at offset 0 has size \d+ \(limit 1048576\)$/, 'PAX cap');
  const nonzero = Buffer.from(tars.gnu);
  nonzero.write('1x', 124, 'latin1'); // size field of the first header
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : nonzero[i];
  nonzero.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  throwsSoci(t, () => readTar(nonzero), /^tar header at offset 0 has an invalid size field$/, 'bad octal');
});

t.test('end of archive: sizes and tolerated endings', async (t) => {
  const tar = tars.gnu;
  const full = readTar(tar);
  t.ok(tar.length > full.size, 'record padding after the end blocks is not counted');
  t.ok(tar.subarray(full.size - 1024).every((b) => b === 0), 'the two zero blocks are counted');
  const last = full.entries[full.entries.length - 1];
  const dataEnd = last.uncompressedOffset + Math.ceil(last.uncompressedSize / 512) * 512;
  t.equal(full.size, dataEnd + 1024);
  const oneZero = readTar(tar.subarray(0, dataEnd + 512));
  t.same(oneZero.entries, full.entries);
  t.equal(oneZero.size, dataEnd + 512, 'one zero block then EOF');
  const noZero = readTar(tar.subarray(0, dataEnd));
  t.same(noZero.entries, full.entries);
  t.equal(noZero.size, dataEnd, 'EOF at a header boundary');
  throwsSoci(t, () => readTar(tar.subarray(0, dataEnd + 700)), /^tar stream truncated in the end-of-archive block at offset \d+$/, 'partial end block');
  const garbageAfter = readTar(Buffer.concat([tar.subarray(0, full.size), randomBytes(3000)]));
  t.equal(garbageAfter.size, full.size, 'bytes after the end blocks are ignored');
  const onlyZeros = readTar(Buffer.alloc(1024));
  t.same(onlyZeros, { entries: [], size: 1024 }, 'empty archive');
});
