/** A gzip layer with many small spans, its zTOC and where each file lies, for span read path tests. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildZtoc } from '../../ztoc/build.js';
import { layerSpans, type LayerSpans } from '../../ztoc/layer-spans.js';
import type { Ztoc } from '../../ztoc/types.js';
import { buildLayer, type Compression } from './images.js';
import { prng } from './ztoc-fixtures.js';

export interface SpanLayerFile {
  name: string;
  offset: number;
  size: number;
}

export interface SpanLayer {
  blob: Buffer;
  digest: string;
  tar: Buffer;
  ztoc: Ztoc;
  ztocBytes: Uint8Array;
  spans: LayerSpans;
  files: Map<string, SpanLayerFile>;
  /** Path of the blob written into the given directory. */
  blobPath: string;
}

/** Compressible but not trivially so (about 2:1 with gzip), so spans hold several deflate blocks. */
export function fileContent(seed: number, size: number): Buffer {
  const rand = prng(seed);
  const out = Buffer.allocUnsafe(size);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 \n';
  for (let i = 0; i < size; i++) out[i] = alphabet.charCodeAt(Math.floor(rand() * alphabet.length));
  return out;
}

export async function buildSpanLayer(
  dir: string,
  files: { name: string; size: number }[],
  spanSize: number,
  compression: Compression = 'gzip',
): Promise<SpanLayer> {
  const layer = await buildLayer({
    compression,
    tarFrom: async (root) => {
      for (const [i, f] of files.entries()) await writeFile(join(root, f.name), fileContent(i + 1, f.size));
    },
  });
  const built = await buildZtoc(chunks(layer.blob, 1 << 20), { spanSize, algorithm: compression === 'none' ? 'uncompressed' : 'gzip', buildTool: 'span-test' });
  const map = new Map<string, SpanLayerFile>();
  for (const e of built.ztoc.toc) {
    if (e.type === 'reg') map.set(e.name.replace(/^\.\//, ''), { name: e.name, offset: e.uncompressedOffset, size: e.uncompressedSize });
  }
  const blobPath = join(dir, layer.digest.replace(':', '-'));
  await writeFile(blobPath, layer.blob);
  return { blob: layer.blob, digest: layer.digest, tar: layer.tar, ztoc: built.ztoc, ztocBytes: built.bytes, spans: layerSpans(built.ztoc), files: map, blobPath };
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
