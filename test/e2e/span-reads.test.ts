/**
 * Reads of local spans answered in C (third_party/fuse-native/span-reads.patch, fs/span-table.ts)
 * on a real FUSE mount of a lazy layer from a real registry: the first read of a file goes to
 * JS and fetches its spans; once their files are on disk, a read the page cache cannot answer
 * is served from the span files without JS, with the same bytes; a span file that disappears
 * behind the cache's back sends the read to JS again, never wrong bytes to the reader.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultConfig } from '../../config/load.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { FetchLimiter } from '../../fs/fetch-limiter.js';
import { mountLazyLayer } from '../../fs/lazy-layer.js';
import { buildLayerModel } from '../../fs/layer-model.js';
import { SpanCache } from '../../fs/span-cache.js';
import { spansOfRange } from '../../ztoc/layer-spans.js';
import { execOk } from '../helpers/exec.js';
import { unmountAllUnder } from '../helpers/mounts.js';
import { pushBlob } from '../helpers/registry-push.js';
import { startRegistry } from '../helpers/registry.js';
import { buildSpanLayer } from '../helpers/span-layer.js';
import { tempDirFor } from '../helpers/tmp.js';

const KiB = 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

t.test('reads of local spans are answered in C with the right bytes; a vanished span file goes back to JS', async (t) => {
  const dir = await tempDirFor(t, 'span-reads-');
  t.teardown(() => unmountAllUnder(dir));
  const files = Array.from({ length: 6 }, (_v, i) => ({ name: `f${i}`, size: (i + 1) * 300 * KiB + 17 }));
  const layer = await buildSpanLayer(dir, files, 256 * KiB);
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  await pushBlob(reg.url, 'soci/span-reads', layer.blob);
  const client = new RegistryClient({ retries: { max: 1, baseMs: 10, maxMs: 50 } });
  t.teardown(() => client.close());
  const cacheDir = join(dir, 'cache');
  const cache = await SpanCache.open({ directory: cacheDir, diskMaxBytes: 1 << 30, memoryMaxBytes: 64 << 20 });
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const config = defaultConfig();
  const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.blob.length };
  const mounted = await mountLazyLayer(
    { registry: client, cache, limiter: new FetchLimiter(4), config: { fuse: config.fuse, blob: { ...config.blob, readahead_spans: 0 } }, logger: { info: () => undefined, warn: () => undefined, error: () => undefined } },
    { repo: parseReference(`${reg.host}/soci/span-reads:v1`), layer: desc, model: await buildLayerModel(desc, { bytes: layer.ztocBytes, digest: 'sha256:test', disableXattrs: true }), mountpoint: mnt },
  );
  t.teardown(() => mounted.unmount());
  const table = mounted.fs.spanTable;
  if (!table) throw new Error('the lazy layer mounted without a span table');
  const want = (name: string): string => {
    const f = layer.files.get(name)!;
    return sha(layer.tar.subarray(f.offset, f.offset + f.size));
  };
  // Drops the mount's cached pages of a file, so the next read reaches FUSE.
  const uncache = (path: string): Promise<unknown> => execOk('dd', [`if=${path}`, 'of=/dev/null', 'iflag=nocache', 'count=0', 'status=none']);

  const before = table.counts();
  t.equal(sha(await readFile(join(mnt, 'f3'))), want('f3'), 'first read: right bytes');
  const first = table.counts();
  t.ok(first.passed > before.passed, `first read went to JS (${first.passed - before.passed} reads)`);
  await mounted.reader.diskWritesDone();
  const f3 = layer.files.get('f3')!;
  const { start, end } = spansOfRange(layer.spans, f3.offset, f3.size);
  for (let id = start; id <= end; id++) t.ok(table.isLocal(id), `span ${id} marked local once on disk`);

  await uncache(join(mnt, 'f3'));
  t.equal(sha(await readFile(join(mnt, 'f3'))), want('f3'), 'second read: right bytes');
  const second = table.counts();
  t.ok(second.served > first.served, `second read answered in C (${second.served - first.served} reads)`);
  t.equal(second.passed, first.passed, 'and none of it went to JS');

  // The span files of f3 vanish behind the cache's back (an operator's rm): C cannot open
  // them and hands the reads to JS, which answers them (from memory, or by fetching again).
  const layerDir = cache.layerDirectory(layer.digest);
  for (const f of await readdir(layerDir)) {
    const id = Number(f.split('-')[0]);
    if (id >= start && id <= end) await unlink(join(layerDir, f));
  }
  cache.close();
  await uncache(join(mnt, 'f3'));
  t.equal(sha(await readFile(join(mnt, 'f3'))), want('f3'), 'read after the files vanished: right bytes');
  t.ok(table.counts().passed > second.passed, 'that read went to JS');
});
