/**
 * One pass over a layer blob: decompress, hash the tar (its diffID), list its entries and keep
 * the tar in a temp file so file data can be copied out by offset afterwards.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { TarReader } from '../ztoc/tar-reader.js';
import type { FileMetadata } from '../ztoc/types.js';
import { decompressLayer } from './layer-decompress.js';

export interface SpooledTar {
  entries: FileMetadata[];
  /** `sha256:<hex>` of the whole uncompressed stream. */
  diffId: string;
  /** Uncompressed bytes, including anything after the end-of-archive blocks. */
  bytes: number;
}

/** Writes are gathered to about this size: zlib hands out 256 KiB, zstd 64 KiB. */
const WRITE_BATCH = 1 << 20;

export async function spoolLayer(blob: AsyncIterable<Uint8Array>, mediaType: string, tarPath: string): Promise<SpooledTar> {
  const out = await open(tarPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  const reader = new TarReader();
  let bytes = 0;
  try {
    await decompressLayer(blob, mediaType, async (tar) => {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of tar) {
        hash.update(chunk);
        reader.push(chunk);
        bytes += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH) {
          await writeAll(out, pending);
          pending = [];
          pendingBytes = 0;
        }
      }
      await writeAll(out, pending);
    });
    reader.end();
  } finally {
    await out.close();
  }
  return { entries: reader.entries, diffId: `sha256:${hash.digest('hex')}`, bytes };
}

async function writeAll(fh: Awaited<ReturnType<typeof open>>, bufs: Buffer[]): Promise<void> {
  if (bufs.length === 0) return;
  let rest = bufs;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    rest = skipWritten(rest, bytesWritten);
  }
}

/** writev may write less than asked (a full disk reports ENOSPC only on the next call). */
function skipWritten(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i].length) n -= bufs[i++].length;
  if (i === bufs.length) return [];
  return [bufs[i].subarray(n), ...bufs.slice(i + 1)];
}
