import { constants, createGunzip, createInflateRaw, inflateRawSync, type Gunzip, type InflateRaw, type ZlibOptions } from 'node:zlib';
import { SociError, invalidArgument } from '../errors/errors.js';
import { primedHead } from './deflate-prefix.js';
import type { Checkpoint } from './types.js';

const GZIP_TRAILER = 8;
const MAX_CHUNK = 64 << 20;
const MIN_ZLIB_CHUNK = 64;

interface InflateResult {
  data: Buffer;
  /** Input bytes the engine consumed (it stops at the end of a deflate stream). */
  consumed: number;
}

/**
 * Inflate one span: `compressed` = exactly the span's compressed bytes [in_i - (bits?1:0), in_{i+1}) (or to the blob end),
 * returns exactly `expectedSize` uncompressed bytes (= out_{i+1} - out_i). Throws SociError on corrupt data or a size mismatch.
 * Runs on libuv's thread pool (node:zlib async), so the event loop only sees chunk callbacks.
 */
export interface InflateSpanOptions {
  /**
   * The last span of a layer: the gzip stream goes on past the tar's end (record padding),
   * which the zTOC does not count, so output beyond expectedSize is dropped, not an error.
   */
  lastSpan?: boolean;
}

export async function inflateSpan(cp: Checkpoint, compressed: Uint8Array, expectedSize: number, opts: InflateSpanOptions = {}): Promise<Buffer> {
  const where = `span at compressed offset ${cp.in} (bits ${cp.bits})`;
  if (expectedSize === 0) return Buffer.alloc(0);
  if (cp.bits !== 0 && compressed.length === 0) throw invalidArgument(`${where}: no compressed bytes`);
  const input = fedPieces(cp, compressed);
  const fed = input.reduce((n, b) => n + b.length, 0);
  // Fed bytes that are not `compressed` bytes: the prefix-only bytes before the merged one.
  const skew = fed - compressed.length;
  try {
    const raw = await run(rawEngine(cp, expectedSize), input, expectedSize, where, opts.lastSpan);
    if (raw.data.length === expectedSize || raw.consumed >= fed) return checkSize(raw.data, expectedSize, where);
    // The member ended inside the span (spec §2.4): skip its trailer, the rest is whole gzip members.
    const rest = compressed.subarray(raw.consumed - skew + GZIP_TRAILER);
    const want = expectedSize - raw.data.length;
    const more = rest.length === 0 ? Buffer.alloc(0) : (await run(gunzipEngine(want), [rest], want, where, opts.lastSpan)).data;
    return checkSize(Buffer.concat([raw.data, more], raw.data.length + more.length), expectedSize, where);
  } catch (err) {
    if (err instanceof SociError) throw err;
    throw invalidArgument(`${where}: corrupt deflate data: ${(err as Error).message}`, err);
  }
}

/** Output past a last span's end that inflateSpanSync still takes in (tar record padding is at most 10 KiB). */
const LAST_SPAN_SLACK = 64 * 1024;

/**
 * inflateSpan's common case in one synchronous zlib call: the span lies in one gzip member.
 * Undefined for anything else (a member ending inside the span, corrupt data, a wrong size);
 * inflateSpan then handles the span and names what is wrong. It blocks its thread for the whole
 * span (~2.5 ms for 1 MiB) and is for worker threads only; there it takes about half the CPU of
 * the stream, whose thread pool round trips cost more than the inflate itself.
 */
export function inflateSpanSync(cp: Checkpoint, compressed: Uint8Array, expectedSize: number, opts: InflateSpanOptions = {}): Buffer | undefined {
  const dest = Buffer.allocUnsafe(expectedSize + (opts.lastSpan ? LAST_SPAN_SLACK : 0) + 1);
  const n = inflateSpanInto(cp, compressed, expectedSize, dest, opts);
  return n === undefined ? undefined : dest.subarray(0, n);
}

export interface InflateIntoOptions extends InflateSpanOptions {
  /**
   * A buffer of at least `n` bytes that the call may overwrite: a span starting mid-byte is
   * fed as a few primed bytes plus the rest, joined there instead of in fresh memory.
   */
  scratch?: (n: number) => Buffer;
}

/**
 * inflateSpanSync into `dest`, which should have a byte of room past the span (past
 * LAST_SPAN_SLACK more for a last span): so zlib shows output beyond the span without writing
 * anywhere else. Resolves to the span's size, or undefined as inflateSpanSync does.
 */
export function inflateSpanInto(cp: Checkpoint, compressed: Uint8Array, expectedSize: number, dest: Uint8Array, opts: InflateIntoOptions = {}): number | undefined {
  if (expectedSize === 0 || compressed.length === 0 || dest.length < expectedSize) return undefined;
  const pieces = fedPieces(cp, compressed);
  try {
    const got = inflateRawInto(joined(pieces, opts.scratch), rawOptions(cp, expectedSize), dest);
    if (got === expectedSize || (opts.lastSpan && got > expectedSize)) return expectedSize;
  } catch {
    // Named by inflateSpan.
  }
  return undefined;
}

/** Where Node's zlib engines write their output: `_outBuffer` from `_outOffset` up to `_chunkSize`. */
interface ZlibOutputFields {
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

/** The synchronous call behind inflateRawSync; it returns a view of what it wrote. */
interface ZlibSyncCall {
  _processChunk(chunk: Uint8Array, flushFlag: number): Buffer;
}

/**
 * Makes a new engine write its output into `dest`. Node has no public way to inflate into a
 * given buffer, and zlib's own output, fresh memory faulted in page by page and then copied,
 * cost more than the copy (a cold read of a 1.7 GiB layer: ~2 CPU-s of page faults and copies
 * on the worker threads). Node 20's engines, sync and streaming alike, write through the three
 * fields above and hand out views of what they wrote; false (nothing changed) where this Node's
 * engine has no such fields. Output that fills `dest` continues in fresh memory, as zlib's own
 * does, so callers give it room past what they expect.
 */
function outputInto(engine: object, dest: Uint8Array): boolean {
  const e = engine as Partial<ZlibOutputFields>;
  if (!Buffer.isBuffer(e._outBuffer) || e._outOffset !== 0 || typeof e._chunkSize !== 'number') return false;
  e._outBuffer = Buffer.from(dest.buffer, dest.byteOffset, dest.length);
  e._chunkSize = dest.length;
  return true;
}

/** Bytes inflated from `input` into `dest` (more than dest.length is an error); a Node without the fields above gets a copy. */
function inflateRawInto(input: Uint8Array, options: ZlibOptions, dest: Uint8Array): number {
  // The smallest chunk zlib takes: the engine's own first output buffer is never used.
  const engine = createInflateRaw({ ...options, chunkSize: MIN_ZLIB_CHUNK, maxOutputLength: dest.length });
  const sync = (engine as Partial<ZlibSyncCall>)._processChunk;
  if (typeof sync !== 'function' || !outputInto(engine, dest)) {
    engine.close();
    const data = inflateRawSync(input, { ...options, maxOutputLength: dest.length });
    dest.set(data);
    return data.length;
  }
  const out = sync.call(engine, input, constants.Z_SYNC_FLUSH);
  if (out.buffer !== dest.buffer || out.byteOffset !== dest.byteOffset) dest.set(out);
  return out.length;
}

function joined(pieces: Uint8Array[], scratch?: (n: number) => Buffer): Uint8Array {
  if (pieces.length === 1) return pieces[0];
  const n = pieces.reduce((sum, p) => sum + p.length, 0);
  if (!scratch) return Buffer.concat(pieces, n);
  const out = scratch(n).subarray(0, n);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What the raw inflater is fed: [empty blocks + the partial byte's live bits] then the rest, unchanged. */
function fedPieces(cp: Checkpoint, compressed: Uint8Array): Uint8Array[] {
  return cp.bits === 0 ? [compressed] : [primedHead(cp.bits, compressed[0]), compressed.subarray(1)];
}

function rawOptions(cp: Checkpoint, expectedSize: number): ZlibOptions {
  return {
    windowBits: 15,
    // Checkpoint 0 (start of the first member) has no history; any other gets its 32 KiB window.
    dictionary: cp.out === 0 ? undefined : cp.window,
    finishFlush: constants.Z_SYNC_FLUSH,
    chunkSize: chunkSizeFor(expectedSize),
  };
}

/** A raw inflater for the span; with `dest`, one that writes into it where Node allows (see outputInto). */
export function rawEngine(cp: Checkpoint, expectedSize: number, dest?: Uint8Array): InflateRaw {
  if (dest) {
    const engine = createInflateRaw({ ...rawOptions(cp, expectedSize), chunkSize: MIN_ZLIB_CHUNK });
    if (outputInto(engine, dest)) return engine;
    engine.close();
  }
  return createInflateRaw(rawOptions(cp, expectedSize));
}

function gunzipEngine(expectedSize: number): Gunzip {
  return createGunzip({ finishFlush: constants.Z_SYNC_FLUSH, chunkSize: chunkSizeFor(expectedSize) });
}

/**
 * One output chunk for the whole span (up to MAX_CHUNK): fewer thread pool round trips, and the
 * chunk is returned as is instead of being copied (fresh memory is costly to touch on these VMs).
 */
function chunkSizeFor(expectedSize: number): number {
  return Math.max(64 * 1024, Math.min(expectedSize + 1, MAX_CHUNK));
}

/** The stream cannot end inside the first piece (the primed head holds no final block), so writing the pieces separately is safe. */
function run(engine: InflateRaw | Gunzip, input: readonly Uint8Array[], limit: number, where: string, truncate = false): Promise<InflateResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    engine.on('data', (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        engine.destroy();
        if (!truncate) {
          reject(invalidArgument(`${where}: inflates to more than the expected ${limit} bytes`));
          return;
        }
        chunks.push(chunk.subarray(0, limit - size));
        size = limit;
        resolve({ data: Buffer.concat(chunks, size), consumed: Number.MAX_SAFE_INTEGER });
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    });
    engine.on('error', reject);
    engine.on('end', () => {
      const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      resolve({ data, consumed: engine.bytesWritten });
    });
    input.forEach((piece, i) => (i === input.length - 1 ? engine.end(piece) : engine.write(piece)));
  });
}

function checkSize(data: Buffer, expectedSize: number, where: string): Buffer {
  if (data.length !== expectedSize) {
    throw invalidArgument(`${where}: inflated to ${data.length} bytes, expected ${expectedSize}`);
  }
  return data;
}
