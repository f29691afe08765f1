/** Worker-thread entry: runs one MaterializeJob and reports the outcome as plain data. */
import { parentPort, workerData } from 'node:worker_threads';
import { SociError } from '../errors/errors.js';
import type { MaterializeJob } from './materialize-plan.js';
import { runJob } from './materialize-sync.js';

export type WorkerReply = { ok: true; warnings: string[] } | { ok: false; kind: SociError['kind']; message: string };

function reply(): WorkerReply {
  try {
    return { ok: true, warnings: runJob(workerData as MaterializeJob) };
  } catch (err) {
    // Errors lose their class crossing threads: send the kind along.
    if (err instanceof SociError) return { ok: false, kind: err.kind, message: err.message };
    return { ok: false, kind: 'internal', message: `unpacking layer: ${(err as Error).message}` };
  }
}

parentPort?.postMessage(reply());
