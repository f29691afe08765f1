import t from 'tap';
import { SociError } from '../../errors/errors.js';
import type { Checkpoint, Ztoc } from '../../ztoc/types.js';
import { WINDOW_SIZE } from '../../ztoc/types.js';
import { decodeGzipZinfo, decodeTarZinfo, decodeZinfo, encodeGzipZinfo, encodeTarZinfo } from '../../ztoc/zinfo.js';
import { flatcFromJson, flatcToJson } from '../helpers/flatc.js';
import { prng, randomBytes, sampleZtoc } from '../helpers/ztoc-fixtures.js';

const CP = 8 + 8 + 1 + WINDOW_SIZE;

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SociError && err.kind === 'invalid-argument') return err.message;
    throw err;
  }
  return '(no error)';
}

const le64 = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const rand = prng(5);
const cps: Checkpoint[] = [
  { in: 10, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) },
  { in: 70000, out: 4194400, bits: 5, window: randomBytes(rand, WINDOW_SIZE) },
  { in: Number.MAX_SAFE_INTEGER, out: 2 ** 40, bits: 7, window: randomBytes(rand, WINDOW_SIZE) },
];

t.test('v2 blob layout is exactly §2.2', async (t) => {
  const blob = encodeGzipZinfo(4194304, cps);
  t.equal(blob.length, 12 + 3 * 32785);
  t.equal(hex(blob.subarray(0, 12)), '03000000' + '0000400000000000', 'int32 count, int64 span size, little-endian');
  const p1 = 12 + CP;
  t.equal(hex(blob.subarray(p1, p1 + 17)), hex(Uint8Array.from([...le64(70000n), ...le64(4194400n), 5])));
  t.ok(Buffer.from(blob.subarray(p1 + 17, p1 + CP)).equals(cps[1].window), 'window follows bits');
  t.equal(hex(blob.subarray(12 + 2 * CP, 12 + 2 * CP + 8)), 'ffffffffffff1f00', 'in = 2^53-1');
  const d = decodeGzipZinfo(blob);
  t.equal(d.version, 2);
  t.equal(d.spanSize, 4194304);
  t.strictSame(
    d.checkpoints.map((c) => [c.in, c.out, c.bits, hex(c.window)]),
    cps.map((c) => [c.in, c.out, c.bits, hex(c.window)]),
  );
});

t.test('v1 blobs (checkpoint 0 omitted) decode with the implied first checkpoint', async (t) => {
  const v2 = encodeGzipZinfo(1 << 20, cps);
  const v1 = Uint8Array.from([...v2.subarray(0, 12), ...v2.subarray(12 + CP)]);
  t.equal(v1.length, 12 + 2 * CP);
  const d = decodeGzipZinfo(v1);
  t.equal(d.version, 1);
  t.equal(d.checkpoints.length, 3);
  t.strictSame({ ...d.checkpoints[0], window: null }, { in: 10, out: 0, bits: 0, window: null });
  t.ok(d.checkpoints[0].window.length === WINDOW_SIZE && d.checkpoints[0].window.every((x) => x === 0));
  t.strictSame([d.checkpoints[1].in, d.checkpoints[1].out, d.checkpoints[1].bits], [70000, 4194400, 5]);
  t.equal(hex(d.checkpoints[2].window), hex(cps[2].window));

  const single = decodeGzipZinfo(Uint8Array.from([1, 0, 0, 0, ...le64(4096n)]));
  t.equal(single.version, 1, 'a 12-byte blob with count 1 is v1');
  t.strictSame(single.checkpoints.map((c) => [c.in, c.out, c.bits]), [[10, 0, 0]]);
});

t.test('malformed gzip zInfo blobs are rejected with the cause', async (t) => {
  const blob = encodeGzipZinfo(4096, cps.slice(0, 2));
  const patch = (pos: number, bytes: number[]): Uint8Array => {
    const b = blob.slice();
    b.set(bytes, pos);
    return b;
  };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(0), /^ztoc: zinfo blob of 0 bytes is shorter than its 12-byte header$/],
    ['11 bytes', blob.subarray(0, 11), /shorter than its 12-byte header/],
    ['one byte short', blob.subarray(0, blob.length - 1), /^ztoc: zinfo blob of 65581 bytes fits neither v1 nor v2 for 2 checkpoints$/],
    ['one byte long', Uint8Array.from([...blob, 0]), /fits neither v1 nor v2/],
    ['count 0', patch(0, [0, 0, 0, 0]), /^ztoc: zinfo checkpoint count 0 must be positive$/],
    ['count -5', patch(0, le64(-5n).slice(0, 4)), /checkpoint count -5 must be positive/],
    ['count 2^31-1', patch(0, [0xff, 0xff, 0xff, 0x7f]), /^ztoc: zinfo claims 2147483647 checkpoints but a 65582-byte blob holds at most 3$/],
    ['count 3 reads as v1; its implied checkpoint 0 collides', patch(0, [3, 0, 0, 0]), /checkpoint 1 in 10 is not above checkpoint 0 in 10/],
    ['count 4', patch(0, [4, 0, 0, 0]), /zinfo claims 4 checkpoints but a 65582-byte blob holds at most 3/],
    ['span size 0', patch(4, le64(0n)), /^ztoc: zinfo span_size 0 must be positive$/],
    ['span size -1', patch(4, le64(-1n)), /zinfo span_size -1 is negative or above 2\^53-1/],
    ['span size 2^53', patch(4, le64(1n << 53n)), /zinfo span_size 9007199254740992 is negative or above 2\^53-1/],
    ['in 2^63-1', patch(12 + CP, le64((1n << 63n) - 1n)), /checkpoint 1 in 9223372036854775807 is negative or above/],
    ['out negative', patch(12 + CP + 8, le64(-2n)), /checkpoint 1 out -2 is negative/],
    ['bits 8', patch(12 + CP + 16, [8]), /^ztoc: checkpoint 1 bits 8 not in 0\.\.7$/],
    ['in not increasing', patch(12 + CP, le64(10n)), /^ztoc: checkpoint 1 in 10 is not above checkpoint 0 in 10$/],
    ['out not increasing', patch(12 + CP + 8, le64(0n)), /^ztoc: checkpoint 1 out 0 is not above checkpoint 0 out 0$/],
  ];
  for (const [name, b, re] of cases) t.match(message(() => decodeGzipZinfo(b)), re, name);

  const r = prng(9);
  let ok = 0;
  for (let i = 0; i < 300; i++) {
    const b = blob.slice(0, 12 + CP + 17);
    const len = Math.floor(r() * b.length);
    b[Math.floor(r() * 29)] ^= 1 + Math.floor(r() * 255);
    const m = message(() => decodeGzipZinfo(b.subarray(0, len)));
    if (m === '(no error)') ok++;
    else if (!m.startsWith('ztoc: ')) t.fail(m);
  }
  t.pass(`300 flipped+truncated headers: ${ok} decoded, the rest rejected with SociError`);
});

t.test('encodeGzipZinfo refuses values it could not round-trip', async (t) => {
  const w = new Uint8Array(WINDOW_SIZE);
  t.match(message(() => encodeGzipZinfo(0, cps)), /zinfo span_size 0 must be positive/);
  t.match(message(() => encodeGzipZinfo(4096, [])), /zinfo has 0 checkpoints/);
  t.match(message(() => encodeGzipZinfo(4096, [{ in: 10, out: 0, bits: 8, window: w }])), /checkpoint 0 bits 8 not in 0\.\.7/);
  t.match(message(() => encodeGzipZinfo(4096, [{ in: 10, out: 0, bits: 0, window: w.subarray(1) }])), /checkpoint 0 window is 32767 bytes, not 32768/);
  t.match(message(() => encodeGzipZinfo(4096, [{ in: 2 ** 53, out: 0, bits: 0, window: w }])), /checkpoint 0 in 9007199254740992 is not a non-negative safe integer/);
  t.match(message(() => encodeGzipZinfo(4096, [{ in: 1.5, out: 0, bits: 0, window: w }])), /checkpoint 0 in 1.5/);
});

t.test('TarZinfo: FlatBuffers table as upstream writes it, legacy raw record accepted', async (t) => {
  const blob = encodeTarZinfo(4194304, 10_485_761);
  t.strictSame(decodeTarZinfo(blob), { version: 2, spanSize: 4194304, size: 10_485_761 });
  t.strictSame(flatcToJson('zinfo.fbs', blob), { version: 2, span_size: 4194304, size: 10485761 }, 'flatc reads our table');
  const fromFlatc = flatcFromJson('zinfo.fbs', '{"version": 2, "span_size": 65536, "size": 9007199254740991}');
  t.strictSame(decodeTarZinfo(fromFlatc), { version: 2, spanSize: 65536, size: Number.MAX_SAFE_INTEGER }, 'we read flatc\'s table');
  t.ok(encodeTarZinfo(1, 1).length > 20, 'a valid table is never 20 bytes, so the legacy size is unambiguous');

  const legacy = Uint8Array.from([2, 0, 0, 0, ...le64(4096n), ...le64(123456n)]);
  t.strictSame(decodeTarZinfo(legacy), { version: 2, spanSize: 4096, size: 123456 });
  t.ok(message(() => decodeTarZinfo(Uint8Array.from([3, ...legacy.subarray(1)]))).startsWith('ztoc: '), '20 bytes without version 2 are not the legacy record');
  t.match(message(() => decodeTarZinfo(Uint8Array.from([2, 0, 0, 0, ...le64(0n), ...le64(1n)]))), /tar zinfo span_size 0 must be positive/);
  t.match(message(() => decodeTarZinfo(Uint8Array.from([2, 0, 0, 0, ...le64(-1n), ...le64(1n)]))), /tar zinfo span_size -1 is negative/);
  t.match(message(() => decodeTarZinfo(new Uint8Array(3))), /^ztoc: root offset at offset 0 \(\+4 bytes\) lies outside the 3-byte buffer$/);
  t.match(message(() => decodeTarZinfo(Uint8Array.from([0xf0, 0xff, 0xff, 0xff, ...new Uint8Array(30)]))), /tar zinfo at offset 4294967280/);
  t.match(message(() => encodeTarZinfo(0, 5)), /tar zinfo span_size 0 must be positive/);
  for (let cut = 0; cut < blob.length; cut++) {
    const m = message(() => decodeTarZinfo(blob.subarray(0, cut)));
    if (!m.startsWith('ztoc: ')) t.fail(`cut ${cut}: ${m}`);
  }
});

t.test('decodeZinfo dispatches on the compression algorithm', async (t) => {
  const z = sampleZtoc(10, 2);
  const g = decodeZinfo(z);
  t.equal(g.spanSize, 4 * 1024 * 1024);
  t.equal(g.checkpoints.length, 2);
  t.equal(g.checkpoints[0].in, 10);
  const tar: Ztoc = { ...z, compressionAlgorithm: 'uncompressed', zinfoBlob: encodeTarZinfo(65536, 1000000) };
  t.strictSame(decodeZinfo(tar), { spanSize: 65536, checkpoints: [] });
  t.match(message(() => decodeZinfo({ ...z, compressionAlgorithm: 'zstd' as 'gzip' })), /unknown compression algorithm zstd/);
  t.match(message(() => decodeZinfo({ ...tar, compressionAlgorithm: 'gzip' })), /zinfo/, 'a TarZinfo is not a gzip zinfo');
});
