/**
 * Worker thread of InflateWorkers: verifies and inflates spans into shared memory, whole
 * (`decode`) or while their bytes arrive (`begin`/`received`), several at a time.
 *
 * A whole span is inflated in one synchronous zlib call: this thread serves nothing else, and
 * the stream's thread pool round trips cost more than the inflate (1 MiB spans: ~2.5 ms at
 * once against ~4-5 ms as a stream). So an arriving span is only hashed as its bytes land, and
 * is streamed through the inflater only once they have been coming for `streamAfterMs`: a body
 * from a fast link is complete before then, and inflating it at once is sooner.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { SociError, describe } from '../errors/errors.js';
import { sha256Digest } from '../ztoc/digest.js';
import { decodeSpan, type SpanCodec } from '../ztoc/layer-spans.js';
import { inflateSpanInto } from '../ztoc/span-inflate.js';
import { SpanInflateStream } from '../ztoc/span-inflate-stream.js';
import type { InflateJob, InflateReply, InflateRequest, InflateResponse } from './inflate-job.js';

/** A begun job: the input is hashed, and a gzip span inflated, piece by piece as it arrives. */
interface Arriving {
  job: InflateJob;
  received: number;
  inputHash: Hash;
  /** Output written so far by the stream, hashed in order. */
  outputHash: Hash;
  /** performance.now() at `begin`. */
  begunAt: number;
  stream?: SpanInflateStream;
}

const arriving = new Map<number, Arriving>();

/** This thread's reusable input buffer for spans that start mid-byte (see inflateSpanInto). */
let scratchBuffer = Buffer.alloc(0);
function scratch(n: number): Buffer {
  if (scratchBuffer.length < n) scratchBuffer = Buffer.allocUnsafe(Math.max(n, 2 * scratchBuffer.length));
  return scratchBuffer;
}

function codecOf(job: InflateJob): SpanCodec {
  const checkpoint = { in: job.checkpointIn, out: job.checkpointOut, bits: job.bits, window: job.window };
  return { algorithm: job.algorithm, checkpoint, uncompressedSize: job.uncompressedSize, lastSpan: job.lastSpan };
}

const inputOf = (job: InflateJob, end = job.compressedLength, start = 0): Uint8Array =>
  new Uint8Array(job.input, job.inputOffset + start, end - start);

function failure(err: unknown): InflateReply {
  return { error: { kind: err instanceof SociError ? err.kind : 'invalid-argument', message: describe(err) } };
}

/** The whole span from its verified input, into the output; the reply names its sha256. */
async function inflateWhole(job: InflateJob): Promise<InflateReply> {
  const codec = codecOf(job);
  const input = inputOf(job);
  const output = new Uint8Array(job.output);
  let size = codec.algorithm === 'gzip' ? inflateSpanInto(codec.checkpoint, input, codec.uncompressedSize, output, { lastSpan: codec.lastSpan, scratch }) : undefined;
  if (size === undefined) {
    const data = await decodeSpan(codec, input);
    output.set(data);
    size = data.length;
  }
  return { sha256: createHash('sha256').update(output.subarray(0, size)).digest('hex') };
}

async function decode(job: InflateJob): Promise<InflateReply> {
  try {
    const got = sha256Digest(inputOf(job));
    if (got !== job.digest) return { mismatch: got };
    return await inflateWhole(job);
  } catch (err) {
    return failure(err);
  }
}

function begin(id: number, job: InflateJob): void {
  arriving.set(id, { job, received: 0, inputHash: createHash('sha256'), outputHash: createHash('sha256'), begunAt: performance.now() });
}

/** The bytes are slow to come: inflate them as they do, starting with those already here. */
function startStream(a: Arriving): void {
  const output = new Uint8Array(a.job.output);
  a.stream = new SpanInflateStream(codecOf(a.job).checkpoint, a.job.uncompressedSize, a.job.lastSpan, (chunk, at) => {
    // Mostly zlib wrote it in place already.
    if (chunk.buffer !== output.buffer || chunk.byteOffset !== at) output.set(chunk, at);
    a.outputHash.update(chunk);
  }, output);
  a.stream.push(inputOf(a.job, a.received));
}

/** More of the input is in place; once all of it is, the job is answered. */
async function received(id: number, bytes: number): Promise<InflateReply | undefined> {
  const a = arriving.get(id);
  if (!a || bytes <= a.received) return undefined;
  const end = Math.min(bytes, a.job.compressedLength);
  const piece = inputOf(a.job, end, a.received);
  a.received = end;
  a.inputHash.update(piece);
  if (a.stream) a.stream.push(piece);
  else if (end < a.job.compressedLength && a.job.algorithm === 'gzip' && performance.now() - a.begunAt >= a.job.streamAfterMs) startStream(a);
  if (end < a.job.compressedLength) return undefined;
  arriving.delete(id);
  const got = `sha256:${a.inputHash.digest('hex')}`;
  if (got !== a.job.digest) {
    a.stream?.destroy();
    return { mismatch: got };
  }
  try {
    // The stream declines what it cannot be sure of; the whole-span path knows every case.
    if (a.stream && (await a.stream.end())) return { sha256: a.outputHash.digest('hex') };
    return await inflateWhole(a.job);
  } catch (err) {
    return failure(err);
  }
}

async function handle(req: InflateRequest): Promise<InflateReply | undefined> {
  switch (req.kind) {
    case 'decode':
      return decode(req.job);
    case 'begin':
      begin(req.id, req.job);
      return undefined;
    case 'received':
      return received(req.id, req.bytes);
    case 'cancel':
      arriving.get(req.id)?.stream?.destroy();
      arriving.delete(req.id);
      return undefined;
  }
}

const port = parentPort;
if (!port) throw new Error('inflate-worker.js runs only as a worker thread');
port.on('message', (req: InflateRequest) => {
  void handle(req).then((reply) => {
    if (reply) port.postMessage({ id: req.id, reply } satisfies InflateResponse);
  });
});
