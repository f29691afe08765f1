/**
 * Unpacks a layer the daemon has no zTOC for into an empty snapshot directory, with the result
 * containerd's overlayfs snapshotter + applier would give: tar -x rules for duplicates and
 * hardlinks, whiteouts as char 0/0 devices, opaque dirs as trusted.overlay.opaque=y.
 *
 * The blob is decompressed once, streaming: the tar goes to a temp file under opts.tmpDir
 * while its sha256 (the diffID) and entry list are computed; the tree is built and checked
 * before anything is written into `dir`. Memory stays bounded by the entry list.
 * On failure the temp file is removed and `dir` is left for the caller to delete.
 */
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { failedPrecondition, invalidArgument } from '../errors/errors.js';
import { silentLogger, type FsLogger } from '../fs/fs-logger.js';
import { buildInodeTree } from '../fs/inode-tree.js';
import { spoolLayer } from './layer-spool.js';
import { materializeTree } from './materialize.js';

export interface UnpackResult {
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  /** Uncompressed tar bytes. */
  bytes: number;
  /** Tar entries (headers), including whiteouts and entries tar -x would drop. */
  entries: number;
  ms: number;
}

export interface UnpackOptions {
  /** Where the uncompressed tar is kept while unpacking; best on the same file system as `dir`. */
  tmpDir: string;
  logger?: FsLogger;
  /** When given, a layer whose diffID differs is refused before anything is written. */
  expectedDiffId?: string;
}

/** blob: the compressed layer as chunks (already digest-verified by the caller's stream); mediaType decides gzip / zstd / uncompressed. */
export async function unpackLayer(blob: AsyncIterable<Uint8Array>, mediaType: string, dir: string, opts: UnpackOptions): Promise<UnpackResult> {
  const started = performance.now();
  const logger = opts.logger ?? silentLogger;
  const root = resolve(dir);
  await checkEmptyDir(root);
  const tmp = await mkdtemp(join(opts.tmpDir, 'unpack-'));
  try {
    const tarPath = join(tmp, 'layer.tar');
    const spooled = await spoolLayer(blob, mediaType, tarPath);
    if (opts.expectedDiffId !== undefined && opts.expectedDiffId !== spooled.diffId) {
      throw invalidArgument(`layer for ${root}: uncompressed digest ${spooled.diffId} does not match the expected diffID ${opts.expectedDiffId}`);
    }
    const tree = buildInodeTree(spooled.entries);
    for (const w of tree.warnings) logger.warn({ dir: root, warning: w }, 'tar entry dropped as tar -x would drop it');
    await materializeTree(tree, tarPath, root, logger);
    const result = { diffId: spooled.diffId, bytes: spooled.bytes, entries: spooled.entries.length, ms: Math.round(performance.now() - started) };
    logger.info({ dir: root, mediaType, ...result }, 'layer unpacked locally');
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function checkEmptyDir(dir: string): Promise<void> {
  const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    throw failedPrecondition(`unpack target ${dir}: ${err.code === 'ENOENT' ? 'does not exist' : err.message}`, err);
  });
  if (!st.isDirectory()) throw failedPrecondition(`unpack target ${dir}: not a directory`);
  if ((await readdir(dir)).length > 0) throw failedPrecondition(`unpack target ${dir}: not empty`);
}
