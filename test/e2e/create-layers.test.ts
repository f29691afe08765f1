/**
 * soci create over real layers (tars of system folders, a multi-member gzip layer, an
 * uncompressed tar layer) from an OCI layout: zTOC fields via flatc, checkpoints equal the
 * zlib reference, span digests, and every file equal to `tar -x`.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOciLayout, ociLayoutToTar, type BuiltLayer } from '../helpers/images.js';
import { execOk } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci } from '../helpers/soci-cli.js';
import { flatcToJson } from '../helpers/flatc.js';
import { buildZranRef, refCheckpoints } from '../helpers/gzip-fixtures.js';
import { decodeZtoc } from '../../ztoc/ztoc-codec.js';
import { decodeGzipZinfo } from '../../ztoc/zinfo.js';
import { layerSpans, readLayerRange } from '../../ztoc/layer-spans.js';
import { cleanPath } from '../../ztoc/ztoc-info.js';
import { parseSociIndex } from '../../ztoc/soci-index.js';
import type { FileMetadata } from '../../ztoc/types.js';

const SPAN = 1 << 20;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function tarOf(paths: string[]): Promise<Buffer> {
  const rel = paths.map((p) => p.replace(/^\//, ''));
  return (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', ...rel])).stdoutBuffer;
}

t.test('soci create on real layers', async (t) => {
  const dir = await tempDirFor(t, 'soci-create-');
  const layout = join(dir, 'layout');
  const image = await buildOciLayout(layout, {
    layers: [
      { tarFrom: await tarOf(['/usr/include']), compression: 'gzip' },
      { tarFrom: await tarOf(['/usr/share/zoneinfo', '/etc']), compression: 'gzip-multi' },
      { tarFrom: await tarOf(['/etc']), compression: 'none' },
      { tarFrom: await tarOf(['/etc/ssl']), compression: 'zstd' },
    ],
    config: { cmd: ['/bin/sh'] },
    ref: 'example.com/test/layers:1',
  });
  const root = join(dir, 'root');
  const res = await soci(root, ['create', '--oci-layout', layout, '--span-size', String(SPAN), '--min-layer-size', '0', 'example.com/test/layers:1']);
  t.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  for (const [i, l] of image.layers.entries()) {
    if (i < 3) t.match(lines[i], new RegExp(`^layer ${l.digest} -> ztoc sha256:[a-f0-9]{64}$`));
  }
  t.match(lines[3], `layer ${image.layers[3].digest} -> ztoc skipped (unsupported layer media type application/vnd.oci.image.layer.v1.tar+zstd)`);
  t.match(lines[4], /^soci index sha256:[a-f0-9]{64} created for manifest /);
  const indexDigest = /soci index (sha256:[a-f0-9]{64})/.exec(lines[4])![1];

  const info = await soci(root, ['index', 'info', indexDigest]);
  t.equal(info.code, 0);
  const index = parseSociIndex(Buffer.from(info.stdout));
  t.equal(index.version, 'v1');
  t.equal(index.manifest.subject?.digest, image.manifestDigest);
  t.equal(index.ztocs.length, 3);

  const zranRef = await buildZranRef(dir);
  for (const [i, layer] of image.layers.slice(0, 3).entries()) {
    await t.test(`layer ${i} (${layer.mediaType})`, async (t) => {
      const ref = index.ztocs.find((z) => z.layerDigest === layer.digest)!;
      t.ok(ref, 'index lists the layer');
      t.equal(ref.spanSize, SPAN);
      const bytes = await readFile(join(root, 'content', 'blobs', 'sha256', ref.ztocDigest.slice(7)));
      t.equal('sha256:' + sha(bytes), ref.ztocDigest);
      const z = decodeZtoc(bytes);
      await checkSchemaGeneric(t, bytes, z);
      t.equal(z.compressedArchiveSize, layer.size);
      t.ok(z.uncompressedArchiveSize <= layer.tar.length && z.uncompressedArchiveSize >= layer.tar.length - 10240, 'tar end within the record padding');
      if (z.compressionAlgorithm === 'gzip') {
        const gzPath = join(dir, `layer${i}.gz`);
        await writeFile(gzPath, layer.blob);
        const ours = decodeGzipZinfo(z.zinfoBlob).checkpoints.map((c) => `${c.in} ${c.out} ${c.bits} ${sha(c.window)}`);
        t.same(ours, await refCheckpoints(zranRef, gzPath, SPAN), 'checkpoints equal zlib Z_BLOCK access points');
      } else {
        t.equal(i, 2);
      }
      const spans = layerSpans(z);
      t.ok(spans.ranges.length > 1, `several spans (${spans.ranges.length})`);
      spans.ranges.forEach((r, id) =>
        t.equal('sha256:' + sha(layer.blob.subarray(r.compressedStart, r.compressedEnd)), z.spanDigests[id], `span ${id} digest`),
      );
      await checkEveryFile(t, dir, `x${i}`, layer, z.toc, spans);
      await checkCliGetFile(t, root, layout, ref.ztocDigest, z.toc, dir);
    });
  }

  await t.test('ztoc info, ls and the image in tar form', async (t) => {
    const ref = index.ztocs[0];
    const zi = await soci(root, ['ztoc', 'info', ref.ztocDigest]);
    t.equal(zi.code, 0);
    const j = JSON.parse(zi.stdout);
    t.same(Object.keys(j), ['version', 'build_tool', 'size', 'span_size', 'num_spans', 'num_files', 'num_multi_span_files', 'files']);
    t.equal(j.version, '0.9');
    t.equal(j.span_size, SPAN);
    t.same(Object.keys(j.files[0]), ['filename', 'offset', 'size', 'type', 'start_span', 'end_span']);
    t.equal(j.num_multi_span_files, j.files.filter((f: { start_span: number; end_span: number }) => f.end_span > f.start_span).length);
    const ls = await soci(root, ['ztoc', 'ls', '--json']);
    t.equal(JSON.parse(ls.stdout).length, 3);
    const tarPath = join(dir, 'image.tar');
    await ociLayoutToTar(layout, tarPath);
    const root2 = join(dir, 'root2');
    const again = await soci(root2, ['create', '--oci-layout', tarPath, '--span-size', String(SPAN), '--min-layer-size', '0', 'example.com/test/layers:1']);
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, indexDigest, 'same index digest from the layout tar as from the directory');
  });
});

async function checkSchemaGeneric(t: Test, bytes: Uint8Array, z: ReturnType<typeof decodeZtoc>): Promise<void> {
  const j = flatcToJson('ztoc.fbs', bytes) as {
    version: string;
    compressed_archive_size: number;
    uncompressed_archive_size: number;
    toc: { metadata: Array<{ name: string; type: string; uncompressed_offset: number; uncompressed_size: number }> };
    compression_info: { max_span_id: number; span_digests: string[]; checkpoints: number[] };
  };
  t.equal(j.version, '0.9');
  t.equal(Number(j.compressed_archive_size), z.compressedArchiveSize);
  t.equal(Number(j.uncompressed_archive_size), z.uncompressedArchiveSize);
  t.equal(j.toc.metadata.length, z.toc.length);
  t.same(j.compression_info.span_digests, z.spanDigests);
  t.equal(j.compression_info.max_span_id, z.maxSpanId);
  t.equal(j.compression_info.checkpoints.length, z.zinfoBlob.length);
  const sample = [0, Math.floor(z.toc.length / 2), z.toc.length - 1];
  for (const i of sample) {
    t.equal(j.toc.metadata[i].name, z.toc[i].name);
    t.equal(j.toc.metadata[i].type, z.toc[i].type);
    t.equal(Number(j.toc.metadata[i].uncompressed_offset ?? 0), z.toc[i].uncompressedOffset);
  }
}

/** Every regular file read through the zTOC equals the file `tar -x` writes. */
async function checkEveryFile(t: Test, dir: string, name: string, layer: BuiltLayer, toc: FileMetadata[], spans: ReturnType<typeof layerSpans>): Promise<void> {
  const out = join(dir, name);
  await mkdir(out);
  await execOk('tar', ['-C', out, '-xf', '-'], { input: layer.tar });
  const last = new Map<string, FileMetadata>();
  for (const f of toc) last.set(cleanPath(f.name), f);
  let checked = 0;
  let mismatches = 0;
  for (const [path, f] of last) {
    if (f.type !== 'reg') continue;
    const ours = await readLayerRange(spans, f.uncompressedOffset, f.uncompressedSize, async (s, e) => layer.blob.subarray(s, e));
    const theirs = await readFile(join(out, path));
    if (sha(ours) !== sha(theirs)) mismatches++;
    checked++;
  }
  t.ok(checked > 50, `${checked} regular files checked`);
  t.equal(mismatches, 0, 'every file equals tar -x');
}

/** `soci ztoc get-file` for the first, last, largest and multi-span files. */
async function checkCliGetFile(t: Test, root: string, layout: string, ztoc: string, toc: FileMetadata[], dir: string): Promise<void> {
  const regs = toc.filter((f) => f.type === 'reg' && f.uncompressedSize > 0);
  const largest = regs.reduce((a, b) => (b.uncompressedSize > a.uncompressedSize ? b : a));
  const pick = [...new Set([regs[0], regs[regs.length - 1], largest])];
  for (const f of pick) {
    const outFile = join(dir, 'got');
    const r = await soci(root, ['ztoc', 'get-file', '--oci-layout', layout, ztoc, f.name, '-o', outFile]);
    t.equal(r.code, 0, r.stderr);
    const want = await readFile(join('/', cleanPath(f.name)));
    t.equal(sha(await readFile(outFile)), sha(want), `get-file ${f.name} (${f.uncompressedSize} bytes)`);
  }
}
