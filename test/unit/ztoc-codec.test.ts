import t, { type Test } from 'tap';
import { Builder } from 'flatbuffers';
import { SociError } from '../../errors/errors.js';
import type { Ztoc } from '../../ztoc/types.js';
import { WINDOW_SIZE } from '../../ztoc/types.js';
import { decodeGzipZinfo, encodeGzipZinfo, encodeTarZinfo } from '../../ztoc/zinfo.js';
import { decodeZtoc, encodeZtoc, encodeZtocUnchecked } from '../../ztoc/ztoc-codec.js';
import { flatcBinaryLiteral, flatcBytes, flatcFromJson, flatcToJson } from '../helpers/flatc.js';
import { prng, sampleCheckpoints, sampleZtoc, sha256, withSortedXattrs } from '../helpers/ztoc-fixtures.js';

/** Runs fn and returns the SociError it threw; any other outcome fails the test. */
function sociError(fn: () => unknown): SociError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof SociError) return err;
    throw err;
  }
  return undefined;
}

/** Byte equality without tap's element-by-element diffing, which takes seconds on 100 KB arrays. */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

/** strictSame on everything but the (large) zInfo blob, which is compared as bytes. */
function sameZtoc(t: Test, actual: Ztoc, expected: Ztoc, msg: string): void {
  t.ok(sameBytes(actual.zinfoBlob, expected.zinfoBlob), `${msg}: zinfo blob bytes`);
  t.strictSame({ ...actual, zinfoBlob: null }, { ...expected, zinfoBlob: null }, msg);
}

t.test('round trip of a realistic zTOC is exact and deterministic', async (t) => {
  const z = sampleZtoc(300, 5);
  const bytes = encodeZtoc(z);
  t.ok(sameBytes(encodeZtoc(z), bytes), 'same input, same bytes');
  const reversed: Ztoc = { ...z, toc: z.toc.map((f) => ({ ...f, xattrs: [...f.xattrs].reverse() })) };
  t.ok(sameBytes(encodeZtoc(reversed), bytes), 'xattr input order does not change the bytes');
  const decoded = decodeZtoc(bytes);
  sameZtoc(t, decoded, withSortedXattrs(z), 'decoded equals input');
  t.ok(sameBytes(encodeZtoc(decoded), bytes), 're-encoding a decoded zTOC reproduces the bytes');
  // Some upstream versions append prefetch JSON after the FlatBuffer; the table data is unaffected.
  const withTrailer = Buffer.concat([bytes, Buffer.from('---SOCI-PREFETCH---[{"path":"/bin/sh"}]')]);
  sameZtoc(t, decodeZtoc(withTrailer), decoded, 'trailing bytes after the FlatBuffer are ignored');
  t.equal(decoded.toc[3].name, './dir3/emoji-😀-3');
  t.equal(decoded.toc[2].name, './dir2/ünïcødé-名前-2');
  t.equal(decoded.toc[11].uid, 4294967294);
  t.equal(new Set(decoded.toc.map((f) => f.type)).size, 7, 'all seven entry types present');
  t.equal(decoded.toc[0].xattrs[0].key, 'LIBARCHIVE.creationtime', 'xattrs sorted by key');
  t.not(decoded.zinfoBlob.buffer, bytes.buffer, 'the zinfo blob is a copy by default');
  const viewed = decodeZtoc(bytes, { viewZinfo: true });
  sameZtoc(t, viewed, decoded, 'viewZinfo decodes the same zTOC');
  t.equal(viewed.zinfoBlob.buffer, bytes.buffer, 'viewZinfo: the zinfo blob is a view into the input');
});

t.test('flatc (schema-generic reader) sees every field we wrote', async (t) => {
  const z = withSortedXattrs(sampleZtoc(40, 3));
  type Json = Record<string, unknown>;
  const j = flatcToJson('ztoc.fbs', encodeZtoc(z)) as Json;
  t.equal(j.version, z.version);
  t.equal(j.build_tool_identifier, z.buildToolIdentifier);
  t.equal(j.compressed_archive_size, z.compressedArchiveSize);
  t.equal(j.uncompressed_archive_size, z.uncompressedArchiveSize);
  const ci = j.compression_info as Json;
  t.equal(ci.compression_algorithm, 'Gzip');
  t.equal(ci.max_span_id, z.maxSpanId);
  t.strictSame(ci.span_digests, z.spanDigests);
  t.ok(sameBytes(Uint8Array.from(ci.checkpoints as number[]), z.zinfoBlob), 'checkpoints blob byte for byte');
  const md = (j.toc as Json).metadata as Json[];
  t.equal(md.length, z.toc.length);
  let xattrs = 0;
  const mismatches: string[] = [];
  z.toc.forEach((f, i) => {
    const m = md[i];
    const got = [m.name, m.type, m.uncompressed_offset, m.uncompressed_size, m.linkname, m.mode, m.uid, m.gid, m.uname, m.gname, m.mod_time, m.devmajor, m.devminor];
    const want = [f.name, f.type, f.uncompressedOffset, f.uncompressedSize, f.linkname, f.mode, f.uid, f.gid, f.uname, f.gname, f.modTime, f.devmajor, f.devminor];
    if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`entry ${i}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    const xs = (m.xattrs ?? []) as Json[];
    if (xs.length !== f.xattrs.length) mismatches.push(`entry ${i}: ${xs.length} xattrs`);
    xs.forEach((x, k) => {
      if (x.key !== f.xattrs[k].key || !sameBytes(flatcBytes(x.value as string), f.xattrs[k].value)) mismatches.push(`entry ${i} xattr ${k}`);
      xattrs++;
    });
  });
  t.strictSame(mismatches, [], 'every entry field and xattr byte matches');
  t.ok(xattrs >= 30, `compared ${xattrs} xattrs`);

  const tar: Ztoc = { ...z, compressionAlgorithm: 'uncompressed', compressedArchiveSize: 9_000_000, maxSpanId: 2 };
  tar.zinfoBlob = encodeTarZinfo(4 * 1024 * 1024, 9_000_000);
  const tj = flatcToJson('ztoc.fbs', encodeZtoc(tar)) as Json;
  t.equal((tj.compression_info as Json).compression_algorithm, 'Uncompressed');
});

/** A zTOC written as JSON and built by flatc's own C++ builder. */
function flatcZtocJson(blob: Uint8Array, extraInfo = ''): string {
  const cap = Uint8Array.from([1, 0, 0, 2, 0xff, 0xfe, 0x80, 0, 0x7f, 0xc3]);
  return `{
  "version": "0.9", "build_tool_identifier": "flatc ✓",
  "compressed_archive_size": 50000, "uncompressed_archive_size": 5000000,
  "toc": { "metadata": [
    { "name": "./etc/", "type": "dir", "uncompressed_offset": 512, "mode": 493, "uname": "root", "gname": "root",
      "mod_time": "2024-01-02T03:04:05.123456789Z" },
    { "name": "./etc/passwd", "type": "reg", "uncompressed_offset": 2048, "uncompressed_size": 4194304,
      "mode": 420, "uid": 1000, "gid": 4294967295, "mod_time": "2024-01-02T03:04:05Z",
      "xattrs": [ { "key": "SCHILY.xattr.security.capability", "value": ${flatcBinaryLiteral(cap)} },
                  { "key": "SCHILY.xattr.user.名", "value": "v\\u00e9" } ] },
    { "name": "./lien", "type": "symlink", "uncompressed_offset": 4196864, "linkname": "etc/passwd" },
    { "name": "./dev/null", "type": "char", "uncompressed_offset": 4197376, "devmajor": 1, "devminor": 3 }
  ] },
  "compression_info": { ${extraInfo} "max_span_id": 1,
    "span_digests": ["${sha256('a')}", "${sha256('b')}"],
    "checkpoints": [${Array.from(blob).join(',')}] }
}`;
}

/** A v1 blob: header says 2 checkpoints, only checkpoint 1 is stored. */
function v1Blob(): Uint8Array {
  const window = Uint8Array.from({ length: WINDOW_SIZE }, (_, i) => i % 251);
  const v2 = encodeGzipZinfo(4194304, [
    { in: 10, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) },
    { in: 30000, out: 4194400, bits: 3, window },
  ]);
  const v1 = new Uint8Array(12 + 32785);
  v1.set(v2.subarray(0, 12));
  v1.set(v2.subarray(12 + 32785), 12);
  return v1;
}

t.test('decodeZtoc reads a zTOC built by flatc from JSON, with a v1 zInfo', async (t) => {
  const z = decodeZtoc(flatcFromJson('ztoc.fbs', flatcZtocJson(v1Blob())));
  const common = { linkname: '', uid: 0, gid: 0, uname: '', gname: '', modTime: '', devmajor: 0, devminor: 0, xattrs: [] };
  t.strictSame(z.toc, [
    { ...common, name: './etc/', type: 'dir', uncompressedOffset: 512, uncompressedSize: 0, mode: 493, uname: 'root', gname: 'root', modTime: '2024-01-02T03:04:05.123456789Z' },
    {
      ...common, name: './etc/passwd', type: 'reg', uncompressedOffset: 2048, uncompressedSize: 4194304, mode: 420, uid: 1000, gid: 4294967295,
      modTime: '2024-01-02T03:04:05Z',
      xattrs: [
        { key: 'SCHILY.xattr.security.capability', value: Uint8Array.from([1, 0, 0, 2, 0xff, 0xfe, 0x80, 0, 0x7f, 0xc3]) },
        { key: 'SCHILY.xattr.user.名', value: Uint8Array.from([0x76, 0xc3, 0xa9]) },
      ],
    },
    { ...common, name: './lien', type: 'symlink', uncompressedOffset: 4196864, uncompressedSize: 0, mode: 0, linkname: 'etc/passwd' },
    { ...common, name: './dev/null', type: 'char', uncompressedOffset: 4197376, uncompressedSize: 0, mode: 0, devmajor: 1, devminor: 3 },
  ]);
  t.equal(z.version, '0.9');
  t.equal(z.buildToolIdentifier, 'flatc ✓');
  t.equal(z.compressedArchiveSize, 50000);
  t.equal(z.uncompressedArchiveSize, 5000000);
  t.equal(z.compressionAlgorithm, 'gzip', 'absent compression_algorithm defaults to Gzip');
  t.equal(z.maxSpanId, 1);
  t.strictSame(z.spanDigests, [sha256('a'), sha256('b')]);
  t.ok(sameBytes(z.zinfoBlob, v1Blob()), 'zinfo blob as flatc stored it');
  const zi = decodeGzipZinfo(z.zinfoBlob);
  t.equal(zi.version, 1);
  t.strictSame({ ...zi.checkpoints[0], window: null }, { in: 10, out: 0, bits: 0, window: null });
  t.ok(zi.checkpoints[0].window.length === WINDOW_SIZE && zi.checkpoints[0].window.every((x) => x === 0), 'v1 checkpoint 0 window is 32 KiB of zeros');
  t.strictSame({ ...zi.checkpoints[1], window: undefined }, { in: 30000, out: 4194400, bits: 3, window: undefined });
  t.equal(zi.checkpoints[1].window[300], 300 % 251);

  const tarBlob = flatcFromJson('zinfo.fbs', '{"version": 2, "span_size": 30000, "size": 50000}');
  const tz = decodeZtoc(flatcFromJson('ztoc.fbs', flatcZtocJson(tarBlob, '"compression_algorithm": "Uncompressed",')));
  t.equal(tz.compressionAlgorithm, 'uncompressed');
  t.ok(sameBytes(tz.zinfoBlob, tarBlob));
});

t.test('truncated buffers are rejected with SociError', async (t) => {
  const bytes = encodeZtoc(sampleZtoc(60, 2));
  let rejected = 0;
  for (let cut = 0; cut < bytes.length - 1; cut += 97) {
    const err = sociError(() => decodeZtoc(bytes.slice(0, cut)));
    if (err === undefined) t.fail(`truncation at ${cut} of ${bytes.length} decoded`);
    else rejected++;
  }
  t.ok(rejected > 500, `${rejected} truncations rejected`);
  t.match(sociError(() => decodeZtoc(bytes.slice(0, 100))), { kind: 'invalid-argument', message: /^ztoc: .*outside the 100-byte buffer/ });
});

/** Flips one byte at a time; every outcome must be a valid zTOC or a SociError. */
function flipTrial(t: Test, bytes: Uint8Array, trials: number, seed: number): { ok: number; rejected: number } {
  const rand = prng(seed);
  const counts = { ok: 0, rejected: 0 };
  const reasons = new Map<string, number>();
  for (let i = 0; i < trials; i++) {
    const b = bytes.slice();
    const pos = Math.floor(rand() * b.length);
    b[pos] ^= 1 + Math.floor(rand() * 255);
    try {
      encodeZtoc(decodeZtoc(b));
      counts.ok++;
    } catch (err) {
      if (!(err instanceof SociError)) {
        t.fail(`flip at ${pos}: ${String(err)}`);
        continue;
      }
      counts.rejected++;
      const reason = err.message.replace(/[0-9]+/g, 'N').slice(0, 60);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
  }
  const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 6);
  t.comment(`top rejection reasons: ${top.map(([r, n]) => `${n}x ${r}`).join(' | ')}`);
  return counts;
}

t.test('2,000 random single-byte flips never crash the decoder', async (t) => {
  // One-span zTOC with a v1 blob of 12 bytes, so flips land in the FlatBuffers structure, not in windows.
  const z = sampleZtoc(40, 1);
  z.zinfoBlob = z.zinfoBlob.slice(0, 12);
  const bytes = encodeZtoc(z);
  const start = performance.now();
  const c = flipTrial(t, bytes, 2000, 7);
  t.comment(`${bytes.length}-byte zTOC: ${c.ok} flips decoded to a valid zTOC, ${c.rejected} rejected, ${(performance.now() - start).toFixed(0)} ms`);
  t.equal(c.ok + c.rejected, 2000);
  t.ok(c.rejected > 100 && c.ok > 100, 'both outcomes occur');
});

t.test('random garbage is rejected with SociError', async (t) => {
  const rand = prng(11);
  for (let i = 0; i < 500; i++) {
    const len = Math.floor(rand() * 2048);
    const b = Uint8Array.from({ length: len }, () => Math.floor(rand() * 256));
    if (sociError(() => decodeZtoc(b)) === undefined) t.fail(`random buffer ${i} decoded`);
  }
  t.pass('500 random buffers rejected');
});

interface RawFields {
  version?: string;
  algo?: number;
  compressed?: bigint;
  uncompressed?: bigint;
  blob: Uint8Array;
  digests: string[];
}

/** Builds a zTOC directly with the FlatBuffers Builder, for values encodeZtoc refuses to write. */
function rawZtoc(f: RawFields): Uint8Array {
  const b = new Builder(1024);
  const version = f.version === undefined ? 0 : b.createString(f.version);
  const blob = b.createByteVector(f.blob);
  const ds = f.digests.map((d) => b.createString(d));
  b.startVector(4, ds.length, 4);
  for (let i = ds.length - 1; i >= 0; i--) b.addOffset(ds[i]);
  const digests = b.endVector();
  b.startObject(4);
  b.addFieldInt8(0, f.algo ?? 1, 1);
  b.addFieldInt32(1, f.digests.length - 1, 0);
  b.addFieldOffset(2, digests, 0);
  b.addFieldOffset(3, blob, 0);
  const info = b.endObject();
  b.startObject(6);
  b.addFieldOffset(0, version, 0);
  b.addFieldInt64(2, f.compressed ?? 100000n, 0n);
  b.addFieldInt64(3, f.uncompressed ?? 100000n, 0n);
  b.addFieldOffset(5, info, 0);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

t.test('malformed field values are rejected with a message naming the cause', async (t) => {
  const one = encodeGzipZinfo(4096, sampleCheckpoints(1, 1000));
  const raw = { version: '0.9', blob: one, digests: [sha256('x')] };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['valid raw zTOC decodes', rawZtoc(raw), /^$/],
    ['compression_algorithm 3', rawZtoc({ ...raw, algo: 3 }), /compression_algorithm 3 is not Gzip\(1\) or Uncompressed\(2\)/],
    ['compression_algorithm 0', rawZtoc({ ...raw, algo: 0 }), /compression_algorithm 0 is not/],
    ['version absent', rawZtoc({ ...raw, version: undefined }), /version is not a string/],
    ['size above 2^53', rawZtoc({ ...raw, compressed: 1n << 60n }), /compressed_archive_size 1152921504606846976 is negative or above 2\^53-1/],
    ['negative size', rawZtoc({ ...raw, uncompressed: -1n }), /uncompressed_archive_size -1 is negative/],
    ['empty zinfo', rawZtoc({ ...raw, blob: new Uint8Array(0) }), /zinfo blob of 0 bytes is shorter than its 12-byte header/],
  ];
  for (const [name, bytes, re] of cases) {
    const err = sociError(() => decodeZtoc(bytes));
    if (re.source === '^$') t.equal(err, undefined, name);
    else t.match(err?.message, re, name);
  }
});

t.test('validation rejects inconsistent zTOCs', async (t) => {
  const base = sampleZtoc(30, 3);
  const cps = sampleCheckpoints(3, base.uncompressedArchiveSize);
  const reg = base.toc.findIndex((f) => f.type === 'reg' && f.uncompressedSize > 0);
  const lastEnd = Math.max(...base.toc.map((f) => f.uncompressedOffset + f.uncompressedSize));
  const blob = base.zinfoBlob;
  const patched = (pos: number, bytes: number[]): Uint8Array => {
    const b = blob.slice();
    b.set(bytes, pos);
    return b;
  };
  const cases: Array<[string, Partial<Ztoc>, RegExp]> = [
    ['zinfo one byte short', { zinfoBlob: blob.subarray(0, blob.length - 1) }, /zinfo blob of 98366 bytes fits neither v1 nor v2 for 3 checkpoints/],
    ['zinfo one checkpoint long', { zinfoBlob: Uint8Array.from([...blob, ...blob.subarray(12, 12 + 32785)]) }, /claims 3 checkpoints but .* holds at most 4|fits neither/],
    ['absurd checkpoint count', { zinfoBlob: patched(0, [0xff, 0xff, 0xff, 0x7f]) }, /zinfo claims 2147483647 checkpoints but a 98367-byte blob holds at most 4/],
    ['zero checkpoints', { zinfoBlob: patched(0, [0, 0, 0, 0]) }, /zinfo checkpoint count 0 must be positive/],
    ['negative checkpoint count', { zinfoBlob: patched(0, [0xff, 0xff, 0xff, 0xff]) }, /zinfo checkpoint count -1 must be positive/],
    ['span size 0', { zinfoBlob: patched(4, [0, 0, 0, 0, 0, 0, 0, 0]) }, /zinfo span_size 0 must be positive/],
    ['bits 9', { zinfoBlob: patched(12 + 32785 + 16, [9]) }, /checkpoint 1 bits 9 not in 0\.\.7/],
    [
      'non-monotonic out',
      { zinfoBlob: encodeGzipZinfo(4096, [cps[0], cps[1], { ...cps[2], out: cps[1].out }]) },
      /checkpoint 2 out \d+ is not above checkpoint 1 out/,
    ],
    [
      'non-monotonic in',
      { zinfoBlob: encodeGzipZinfo(4096, [cps[0], { ...cps[1], in: 5 }, cps[2]]) },
      /checkpoint 1 in 5 is not above checkpoint 0 in 10/,
    ],
    ['max_span_id mismatch', { maxSpanId: 5 }, /max_span_id 5 does not match the zinfo's 3 spans/],
    ['digest count mismatch', { spanDigests: base.spanDigests.slice(1) }, /2 span digests for 3 spans/],
    ['bad digest', { spanDigests: [base.spanDigests[0], 'sha256:ABC', base.spanDigests[2]] }, /span digest 1 "sha256:ABC" is not sha256:<64 hex>/],
    ['uppercase digest', { spanDigests: [base.spanDigests[0], base.spanDigests[1].toUpperCase(), base.spanDigests[2]] }, /span digest 1/],
    ['checkpoint past compressed size', { compressedArchiveSize: cps[2].in }, /checkpoint 2 in \d+ is not below compressed_archive_size/],
    ['file past uncompressed size', { uncompressedArchiveSize: lastEnd - 1 }, /runs past uncompressed_archive_size/],
    [
      'overlapping entries',
      { toc: base.toc.map((f, i) => (i === reg + 1 ? { ...f, uncompressedOffset: base.toc[reg].uncompressedOffset + 1 } : f)) },
      /overlaps the previous entry's data/,
    ],
    ['unknown type', { toc: base.toc.map((f, i) => (i === 3 ? { ...f, type: 'sparse' as 'reg' } : f)) }, /entry 3\b.*has unknown type "sparse"/],
    ['empty version', { version: '' }, /version is not a non-empty string/],
    ['tar spans', { compressionAlgorithm: 'uncompressed', zinfoBlob: encodeTarZinfo(4096, 100000), compressedArchiveSize: 100000 }, /max_span_id 2 does not match the zinfo's 25 spans/],
    ['tar size', { compressionAlgorithm: 'uncompressed', zinfoBlob: encodeTarZinfo(40000, 100000), compressedArchiveSize: 90000 }, /tar zinfo size 100000 != compressed_archive_size 90000/],
  ];
  for (const [name, change, re] of cases) {
    const bad = { ...base, ...change };
    t.match(sociError(() => decodeZtoc(encodeZtocUnchecked(bad)))?.message, re, `decode: ${name}`);
    t.match(sociError(() => encodeZtoc(bad))?.message, re, `encode: ${name}`);
  }
  const tar: Ztoc = { ...base, compressionAlgorithm: 'uncompressed', zinfoBlob: encodeTarZinfo(40000, 100000), compressedArchiveSize: 100000 };
  t.equal(decodeZtoc(encodeZtoc(tar)).maxSpanId, 2, 'ceil(100000 / 40000) = 3 spans accepted');
});

/** Completes a hand-built zTOC around `toc` with a version and a one-span v1 compression_info. */
function finishRoot(b: Builder, toc: number): Uint8Array {
  const version = b.createString('0.9');
  const blob = b.createByteVector(encodeGzipZinfo(4096, sampleCheckpoints(1, 10)).subarray(0, 12));
  const digest = b.createString(sha256('x'));
  b.startVector(4, 1, 4);
  b.addOffset(digest);
  const digests = b.endVector();
  b.startObject(4);
  b.addFieldOffset(2, digests, 0);
  b.addFieldOffset(3, blob, 0);
  const info = b.endObject();
  b.startObject(6);
  b.addFieldOffset(0, version, 0);
  b.addFieldInt64(2, 100000n, 0n);
  b.addFieldInt64(3, 100000n, 0n);
  b.addFieldOffset(4, toc, 0);
  b.addFieldOffset(5, info, 0);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

t.test('hostile offsets, lengths and shared sub-objects', async (t) => {
  const bytes = encodeZtoc(sampleZtoc(20, 1));
  const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const rootOut = bytes.slice();
  view(rootOut).setUint32(0, 0xfffffff0, true);
  t.match(sociError(() => decodeZtoc(rootOut))?.message, /^ztoc: root table at offset 4294967280 .* lies outside/);

  // A TOC whose metadata vector claims 2^31-1 entries.
  const b = new Builder(256);
  const entries = b.createByteVector(new Uint8Array(8));
  b.startObject(1);
  b.addFieldOffset(0, entries, 0);
  const vec = finishRoot(b, b.endObject());
  view(vec).setUint32(vec.length - entries, 0x7fffffff, true);
  t.match(sociError(() => decodeZtoc(vec))?.message, /toc metadata \(2147483647 elements\) at offset \d+ .* lies outside/);

  // 20,000 references to one entry that holds 20,000 references to one 1 KiB xattr: 400 GB if expanded.
  const s = new Builder(1 << 20);
  const key = s.createString('k');
  const value = s.createString(new Uint8Array(1024));
  s.startObject(2);
  s.addFieldOffset(0, key, 0);
  s.addFieldOffset(1, value, 0);
  const xattr = s.endObject();
  const refs = (o: number): number => {
    s.startVector(4, 20000, 4);
    for (let i = 0; i < 20000; i++) s.addOffset(o);
    return s.endVector();
  };
  const xattrs = refs(xattr);
  const type = s.createString('reg');
  s.startObject(14);
  s.addFieldOffset(1, type, 0);
  s.addFieldOffset(13, xattrs, 0);
  const md = refs(s.endObject());
  s.startObject(1);
  s.addFieldOffset(0, md, 0);
  const bomb = finishRoot(s, s.endObject());
  const start = performance.now();
  t.match(sociError(() => decodeZtoc(bomb))?.message, /decoded data exceeds 16x the buffer size/);
  t.ok(performance.now() - start < 2000, `${bomb.length}-byte bomb rejected in ${(performance.now() - start).toFixed(0)} ms`);
});

t.test('timings: 20,000 files, 200 checkpoints', async (t) => {
  const z = sampleZtoc(20000, 200);
  let bytes = encodeZtoc(z);
  const runs = 5;
  let t0 = performance.now();
  for (let i = 0; i < runs; i++) bytes = encodeZtoc(z);
  const enc = (performance.now() - t0) / runs;
  let d = decodeZtoc(bytes);
  t0 = performance.now();
  for (let i = 0; i < runs; i++) d = decodeZtoc(bytes);
  const dec = (performance.now() - t0) / runs;
  t.equal(d.toc.length, 20000);
  t.strictSame(d.toc.slice(-3), withSortedXattrs(z).toc.slice(-3));
  t.comment(`zTOC ${(bytes.length / 1e6).toFixed(2)} MB: encode ${enc.toFixed(1)} ms, decode+validate ${dec.toFixed(1)} ms (mean of ${runs})`);
  t.ok(dec < 5000 && enc < 5000, 'both well under 5 s');
});
