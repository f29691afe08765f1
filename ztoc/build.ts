import { sha256Digest } from './digest.js';
import { GzipCheckpointer, PlainSpanner } from './gzip-checkpointer.js';
import { TarReader } from './tar-reader.js';
import { ZTOC_VERSION, type CompressionAlgorithm, type FileMetadata, type Ztoc } from './types.js';
import { encodeGzipZinfo, encodeTarZinfo } from './zinfo.js';
import { encodeZtoc } from './ztoc-codec.js';

export interface BuildOptions {
  spanSize: number;
  algorithm: CompressionAlgorithm;
  buildTool: string;
}

export interface BuiltZtoc {
  ztoc: Ztoc;
  bytes: Uint8Array;
  digest: string;
  /** True when no entry carries an xattr and no directory is opaque (index annotation). */
  disableXattrs: boolean;
}

/**
 * Builds a zTOC from ONE pass over a layer blob: the compressed bytes go through the
 * checkpointer (zran access points and span digests), its output through the tar reader.
 */
export async function buildZtoc(chunks: AsyncIterable<Uint8Array>, opts: BuildOptions): Promise<BuiltZtoc> {
  const tar = new TarReader();
  const onOutput = (c: Uint8Array): void => tar.push(c);
  const spanner = opts.algorithm === 'gzip' ? new GzipCheckpointer(opts.spanSize, onOutput) : new PlainSpanner(opts.spanSize, onOutput);
  for await (const c of chunks) spanner.push(c);
  const result = spanner.end();
  const uncompressedArchiveSize = tar.end();
  const zinfoBlob =
    opts.algorithm === 'gzip'
      ? encodeGzipZinfo(opts.spanSize, result.checkpoints)
      : encodeTarZinfo(opts.spanSize, result.compressedSize);
  const ztoc: Ztoc = {
    version: ZTOC_VERSION,
    buildToolIdentifier: opts.buildTool,
    compressedArchiveSize: result.compressedSize,
    uncompressedArchiveSize,
    toc: tar.entries,
    compressionAlgorithm: opts.algorithm,
    maxSpanId: result.spanDigests.length - 1,
    spanDigests: result.spanDigests,
    zinfoBlob,
  };
  const bytes = encodeZtoc(ztoc);
  return { ztoc, bytes, digest: sha256Digest(bytes), disableXattrs: !needsXattrs(tar.entries) };
}

const OPAQUE = '.wh..wh..opq';

export function needsXattrs(entries: FileMetadata[]): boolean {
  return entries.some(
    (e) => e.name.endsWith('/' + OPAQUE) || e.name === OPAQUE || e.xattrs.some((x) => x.key.startsWith('SCHILY.xattr.')),
  );
}
