/**
 * Streams a layer blob through the decompressor its media type names. Node 20 has no zstd, so
 * zstd layers go through the `zstd -dc` process (Debian package zstd).
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { failedPrecondition, invalidArgument } from '../errors/errors.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** Consumes the uncompressed tar stream; a throw aborts decompression. */
export type TarSink = (tar: AsyncIterable<Buffer>) => Promise<void>;

export function layerCompression(mediaType: string): LayerCompression {
  if (/[+.]gzip$/.test(mediaType)) return 'gzip';
  if (/\+zstd$/.test(mediaType)) return 'zstd';
  if (/\.tar$/.test(mediaType)) return 'none';
  throw invalidArgument(`layer media type ${JSON.stringify(mediaType)} is not a gzip, zstd or uncompressed tar`);
}

export async function decompressLayer(blob: AsyncIterable<Uint8Array>, mediaType: string, sink: TarSink): Promise<void> {
  const kind = layerCompression(mediaType);
  if (kind === 'none') return sink(asBuffers(blob));
  if (kind === 'gzip') return gunzip(blob, sink);
  return unzstd(blob, sink);
}

async function* asBuffers(blob: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> {
  for await (const c of blob) yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

/** The blob's own errors (a digest mismatch, a broken connection) are the cause of whatever follows them. */
class TrackedSource {
  err: unknown = null;
  constructor(private readonly blob: AsyncIterable<Uint8Array>) {}

  async *chunks(): AsyncIterable<Uint8Array> {
    try {
      yield* this.blob;
    } catch (err) {
      this.err ??= err;
      throw err;
    }
  }
}

function codecError(codec: string, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  return invalidArgument(`layer blob: ${codec} stream is corrupt or truncated: ${msg}`, err);
}

function isZlibError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

async function gunzip(blob: AsyncIterable<Uint8Array>, sink: TarSink): Promise<void> {
  const src = new TrackedSource(blob);
  // Larger output chunks than zlib's 16 KiB default: fewer hash/parse/write calls per MiB.
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  try {
    await pipeline(Readable.from(src.chunks(), { objectMode: false }), gz, sink);
  } catch (err) {
    if (src.err) throw src.err;
    throw isZlibError(err) ? codecError('gzip', err) : err;
  }
}

async function unzstd(blob: AsyncIterable<Uint8Array>, sink: TarSink): Promise<void> {
  const src = new TrackedSource(blob);
  const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => stderr.push(b));
  let killed = false;
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? failedPrecondition('zstd layer: the zstd command is not installed (Debian package zstd)', e) : e));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1)));
  });
  const feed = pipeline(Readable.from(src.chunks(), { objectMode: false }), child.stdin);
  const drain = pipeline(child.stdout, sink).catch((err: unknown) => {
    // The sink gave up (a bad tar): stop zstd, whose EPIPE on the feed is then no news.
    killed = true;
    child.kill('SIGKILL');
    throw err;
  });
  const [d, f, e] = await Promise.allSettled([drain, feed, exited]);
  if (src.err) throw src.err;
  if (e.status === 'rejected') throw e.reason;
  if (e.value !== 0 && !killed) {
    // A truncated tar seen by the sink is only the consequence of zstd failing.
    const msg = Buffer.concat(stderr).toString('utf8').trim().split('\n').pop() ?? '';
    throw codecError('zstd', `zstd exited with ${e.value}${msg ? `: ${msg}` : ''}`);
  }
  if (d.status === 'rejected') throw d.reason;
  if (f.status === 'rejected') throw f.reason;
}
