import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SociError } from '../../errors/errors.js';
import { GzipCheckpointer, PlainSpanner, type CheckpointerResult } from '../../ztoc/gzip-checkpointer.js';
import { gzipSpanRanges, plainSpanRanges, spanIdForOffset } from '../../ztoc/spans.js';
import { WINDOW_SIZE } from '../../ztoc/types.js';
import { tempDirFor } from '../helpers/tmp.js';
import {
  buildFixtures,
  buildZranRef,
  checkpointBytes,
  checkpointFile,
  checkpointLines,
  refCheckpoints,
  sha256,
  type GzFixture,
} from '../helpers/gzip-fixtures.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const dir = await tempDirFor(t, 'zran-');
const ref = await buildZranRef(dir);
const fx = await buildFixtures(dir);
const tarHead = (await readFile(fx.doc.plain)).subarray(0, 4096);

/** sha256 of each span's compressed byte range read back from the blob (spec §2.3). */
async function digestsFromFile(gz: string, res: CheckpointerResult): Promise<string[]> {
  const ranges = gzipSpanRanges(res.checkpoints, res.compressedSize, res.uncompressedSize);
  const fh = await open(gz, 'r');
  try {
    const out: string[] = [];
    for (const r of ranges) {
      const buf = Buffer.alloc(r.compressedEnd - r.compressedStart);
      await fh.read(buf, 0, buf.length, r.compressedStart);
      out.push(`sha256:${sha256(buf)}`);
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function fileSha256(path: string): Promise<string> {
  return sha256(await readFile(path));
}

const cases: Array<[GzFixture, number]> = [
  [fx.doc, 64 * KiB],
  [fx.doc, 1 * MiB],
  [fx.lib, 1 * MiB],
  [fx.lib, 4 * MiB],
  [fx.best, 64 * KiB],
  [fx.mixed, 64 * KiB],
  [fx.random, 64 * KiB],
  [fx.multi, 64 * KiB],
  [fx.multi, 1 * MiB],
];

for (const [f, span] of cases) {
  t.test(`${f.name} span ${span}: checkpoints match the C zran reference`, async (t) => {
    const { res, outputSha256 } = await checkpointFile(f.gz, span);
    const expected = await refCheckpoints(ref, f.gz, span);
    t.ok(expected.length >= 2, `reference found ${expected.length} checkpoints`);
    t.same(checkpointLines(res), expected);
    t.equal(outputSha256, await fileSha256(f.plain), 'output is the gzip -dc output');
    t.equal(res.compressedSize, (await readFile(f.gz)).length);
    t.equal(res.uncompressedSize, (await readFile(f.plain)).length);
    t.same(res.spanDigests, await digestsFromFile(f.gz, res), 'span digests hash the blob ranges');
    t.equal(res.spanDigests.length, res.checkpoints.length);
    t.ok(res.checkpoints.every((cp) => cp.window.length === WINDOW_SIZE));
  });
}

t.test('results do not depend on how the input is chunked', async (t) => {
  const mixed = (await readFile(join(dir, 'mixed.bin'))).subarray(0, 1536 * KiB);
  // Two members, so a member boundary also falls between tiny chunks.
  const gz = Buffer.concat([gzipSync(mixed.subarray(0, 1000 * KiB)), gzipSync(mixed.subarray(1000 * KiB))]);
  const whole = checkpointBytes(gz, 64 * KiB, gz.length);
  t.ok(whole.res.checkpoints.length > 10);
  for (const chunk of [1, 7, 4093]) {
    const small = checkpointBytes(gz, 64 * KiB, chunk);
    t.same(checkpointLines(small.res), checkpointLines(whole.res), `chunk ${chunk}`);
    t.same(small.res.spanDigests, whole.res.spanDigests, `chunk ${chunk} digests`);
    t.equal(small.outputSha256, sha256(mixed));
  }
});

t.test('checkpoint 0 is right after the gzip header, with an empty window', async (t) => {
  const { res } = await checkpointFile(fx.doc.gz, 1 * MiB);
  const cp0 = res.checkpoints[0];
  t.same([cp0.in, cp0.out, cp0.bits], [10, 0, 0]);
  t.ok(cp0.window.every((b) => b === 0));
  t.ok(res.checkpoints.some((cp) => cp.bits !== 0), 'mid-byte checkpoints exist');
});

t.test('multi-member stream: counters run on across members', async (t) => {
  const { res } = await checkpointFile(fx.multi.gz, 64 * KiB);
  const members = [fx.doc, fx.random, fx.best, fx.mixed];
  let plain = 0;
  for (const m of members) plain += (await readFile(m.plain)).length;
  t.equal(res.uncompressedSize, plain);
  const lastMember = fx.multi.memberStarts[fx.multi.memberStarts.length - 1];
  t.ok(res.checkpoints.some((cp) => cp.in > lastMember), 'checkpoints in the last member');
});

function feed(data: Uint8Array, span = 64 * KiB): CheckpointerResult {
  const c = new GzipCheckpointer(span, () => undefined);
  c.push(data);
  return c.end();
}

function throwsSoci(t: Test, fn: () => unknown, re: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (err) {
    t.ok(err instanceof SociError && err.kind === 'invalid-argument', `${what}: SociError invalid-argument`);
    t.match((err as Error).message, re, what);
    t.notOk((err as Error).message.includes('\n'), 'one line');
  }
}

t.test('errors', async (t) => {
  const gz = await readFile(fx.doc.gz);
  const half = gz.subarray(0, gz.length >> 1);
  throwsSoci(t, () => feed(half), new RegExp(`^gzip stream truncated at compressed offset ${half.length}$`), 'truncated');
  throwsSoci(t, () => feed(gz.subarray(0, gz.length - 3)), /truncated at compressed offset/, 'trailer cut');
  throwsSoci(t, () => feed(tarHead), /^layer is not gzip: bad magic$/, 'tar is not gzip');
  throwsSoci(t, () => feed(new Uint8Array(0)), /^layer is not gzip: bad magic$/, 'empty input');
  throwsSoci(t, () => feed(Uint8Array.of(0x1f)), /^layer is not gzip: bad magic$/, 'one byte');

  const corrupt = Buffer.from(gz);
  corrupt[gz.length >> 1] ^= 0xff;
  throwsSoci(t, () => feed(corrupt), /^gzip stream (corrupt at compressed offset \d+: .+|CRC mismatch at compressed offset \d+)$/, 'flipped byte');

  const badCrc = Buffer.from(gz);
  badCrc[gz.length - 8] ^= 1;
  throwsSoci(t, () => feed(badCrc), new RegExp(`^gzip stream CRC mismatch at compressed offset ${gz.length - 4}$`), 'CRC');
  const badSize = Buffer.from(gz);
  badSize[gz.length - 1] ^= 1;
  throwsSoci(t, () => feed(badSize), /^gzip stream ISIZE mismatch at compressed offset \d+$/, 'ISIZE');
  throwsSoci(t, () => feed(Buffer.concat([gz, Buffer.from('garbage!')])), /^gzip stream corrupt at compressed offset \d+: /, 'trailing garbage');

  // Once failed, the checkpointer stays failed.
  const c = new GzipCheckpointer(64 * KiB, () => undefined);
  t.throws(() => c.push(corrupt));
  t.throws(() => c.push(gz.subarray(0, 100)));
  t.throws(() => c.end());
  t.throws(() => new GzipCheckpointer(0, () => undefined), /span size 0/);
});

t.test('PlainSpanner: fixed spans of an uncompressed layer', async (t) => {
  const data = (await readFile(fx.doc.plain)).subarray(0, 3 * MiB + 4321);
  const span = 1 * MiB;
  const seen = createHash('sha256');
  const p = new PlainSpanner(span, (b) => seen.update(b));
  for (let off = 0; off < data.length; off += 300007) p.push(data.subarray(off, off + 300007));
  const res = p.end();
  t.equal(seen.digest('hex'), sha256(data), 'bytes pass through');
  t.same(res.checkpoints, []);
  t.equal(res.compressedSize, data.length);
  t.equal(res.uncompressedSize, data.length);
  const ranges = plainSpanRanges(span, data.length);
  t.equal(ranges.length, 4);
  t.same(res.spanDigests, ranges.map((r) => `sha256:${sha256(data.subarray(r.compressedStart, r.compressedEnd))}`));

  const exact = new PlainSpanner(span, () => undefined);
  exact.push(data.subarray(0, 2 * span));
  t.equal(exact.end().spanDigests.length, 2, 'size a multiple of the span size: no empty span');
  t.same(new PlainSpanner(span, () => undefined).end().spanDigests, [], 'empty layer: no spans');
});

t.test('span ranges', async (t) => {
  const cps = [
    { in: 10, out: 0, bits: 0 },
    { in: 500, out: 70000, bits: 3 },
    { in: 900, out: 140001, bits: 0 },
  ];
  const ranges = gzipSpanRanges(cps, 1000, 150000);
  t.same(ranges, [
    { id: 0, compressedStart: 10, compressedEnd: 500, uncompressedStart: 0, uncompressedEnd: 70000 },
    { id: 1, compressedStart: 499, compressedEnd: 900, uncompressedStart: 70000, uncompressedEnd: 140001 },
    { id: 2, compressedStart: 900, compressedEnd: 1000, uncompressedStart: 140001, uncompressedEnd: 150000 },
  ]);
  t.equal(spanIdForOffset(ranges, 0), 0);
  t.equal(spanIdForOffset(ranges, 69999), 0);
  t.equal(spanIdForOffset(ranges, 70000), 1);
  t.equal(spanIdForOffset(ranges, 149999), 2);
  t.equal(spanIdForOffset(ranges, 150000), -1);
  t.throws(() => gzipSpanRanges([cps[0], cps[2], cps[1]], 1000, 150000), /not strictly increasing/);
  t.throws(() => gzipSpanRanges([cps[0], { in: 500, out: 0, bits: 0 }], 1000, 150000), /not strictly increasing/);
  t.throws(() => gzipSpanRanges(cps, 800, 150000), /beyond compressed size/);
  t.throws(() => gzipSpanRanges(cps, 1000, 100000), /beyond uncompressed size/);
  t.throws(() => gzipSpanRanges([{ in: 10, out: 0, bits: 8 }], 1000, 10), /bits out of range/);
  t.same(plainSpanRanges(10, 25).map((r) => [r.compressedStart, r.compressedEnd]), [[0, 10], [10, 20], [20, 25]]);
  t.same(plainSpanRanges(10, 0), []);
});
