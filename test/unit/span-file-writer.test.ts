import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpanFileWriter } from '../../fs/span-file-writer.js';
import { tempDirFor } from '../helpers/tmp.js';
import { fileContent } from '../helpers/span-layer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Bytes of the file that sit in the page cache (util-linux fincore). */
function residentBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}

t.test('direct writes: exact content at sizes off the 4 KiB grid, nothing left in the page cache', async (t) => {
  const dir = await tempDirFor(t, 'span-writer-');
  const writer = new SpanFileWriter();
  const sizes = [1, 4095, 4096, 10_000, 4 << 20, (4 << 20) + 123];
  await Promise.all(sizes.map((n, i) => writer.write(join(dir, `f${i}`), fileContent(i + 1, n))));
  t.equal(writer.direct, true, 'the test directory takes O_DIRECT writes');
  for (const [i, n] of sizes.entries()) {
    const got = await readFile(join(dir, `f${i}`));
    t.equal(got.length, n, `size ${n}`);
    t.equal(sha(got), sha(fileContent(i + 1, n)), `content of ${n} bytes`);
  }
  // Read above, so check a fresh one: a direct write leaves no cached pages behind.
  const big = join(dir, 'fresh');
  await writer.write(big, fileContent(9, 4 << 20));
  t.equal(residentBytes(big), 0, 'no page-cache pages after a direct write');
});

t.test('a shorter write replaces a longer file exactly', async (t) => {
  const dir = await tempDirFor(t, 'span-writer-');
  const writer = new SpanFileWriter();
  const path = join(dir, 'f');
  await writer.write(path, fileContent(1, 3 << 20));
  await writer.write(path, fileContent(2, 5000));
  t.equal(sha(await readFile(path)), sha(fileContent(2, 5000)));
});

t.test('writes beyond the queue cap and with direct off go through the page cache', async (t) => {
  const dir = await tempDirFor(t, 'span-writer-');
  const capped = new SpanFileWriter({ maxQueuedBytes: 1 << 20 });
  const data = fileContent(3, 2 << 20);
  await capped.write(join(dir, 'over-cap'), data);
  t.equal(residentBytes(join(dir, 'over-cap')), data.length, 'a span over the cap is written buffered');
  t.equal(capped.direct, true, 'and direct writes stay on');
  const buffered = new SpanFileWriter({ direct: false });
  await buffered.write(join(dir, 'buffered'), data);
  t.equal(buffered.direct, false);
  t.equal(residentBytes(join(dir, 'buffered')), data.length);
  t.equal(sha(await readFile(join(dir, 'buffered'))), sha(data));
});

t.test('a failed write rejects with its cause and the writes queued behind it still land', async (t) => {
  const dir = await tempDirFor(t, 'span-writer-');
  const writer = new SpanFileWriter();
  const bad = writer.write(join(dir, 'no-such-dir', 'f'), fileContent(1, 8192));
  const good = writer.write(join(dir, 'ok'), fileContent(2, 8192));
  await t.rejects(bad, { code: 'ENOENT' });
  await good;
  t.equal(sha(await readFile(join(dir, 'ok'))), sha(fileContent(2, 8192)));
  // An existing file is not a directory: the error names the path.
  await writeFile(join(dir, 'plain'), 'x');
  await t.rejects(writer.write(join(dir, 'plain', 'f'), fileContent(3, 10)), { code: 'ENOTDIR' });
});
