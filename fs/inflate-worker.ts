/** Worker thread of InflateWorkers: verifies and inflates one span at a time into shared memory. */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { SociError, describe } from '../errors/errors.js';
import { sha256Digest } from '../ztoc/digest.js';
import { decodeSpan } from '../ztoc/layer-spans.js';
import type { InflateJob, InflateReply } from './inflate-job.js';

async function run(job: InflateJob): Promise<InflateReply> {
  try {
    const compressed = new Uint8Array(job.input, job.inputOffset, job.compressedLength);
    const got = sha256Digest(compressed);
    if (got !== job.digest) return { mismatch: got };
    const checkpoint = { in: job.checkpointIn, out: job.checkpointOut, bits: job.bits, window: job.window };
    const data = await decodeSpan({ algorithm: job.algorithm, checkpoint, uncompressedSize: job.uncompressedSize, lastSpan: job.lastSpan }, compressed);
    const output = new Uint8Array(job.output, 0, data.length);
    output.set(data);
    return { sha256: createHash('sha256').update(output).digest('hex') };
  } catch (err) {
    return { error: { kind: err instanceof SociError ? err.kind : 'invalid-argument', message: describe(err) } };
  }
}

const port = parentPort;
if (!port) throw new Error('inflate-worker.js runs only as a worker thread');
port.on('message', (job: InflateJob) => void run(job).then((reply) => port.postMessage(reply)));
