/** Where a layer's compressed bytes come from for the span read path: one blob, read by byte range. */
import { open } from 'node:fs/promises';
import { invalidArgument, unavailable } from '../errors/errors.js';
import type { Descriptor } from '../ztoc/oci.js';
import type { BodyAlloc } from './registry/http.js';
import type { Reference } from './registry/reference.js';

export interface SpanSource {
  /**
   * Bytes [start, endExclusive) of the layer blob, in a buffer from `alloc` when given (the span
   * reader recycles them); rejects when `signal` aborts.
   */
  fetchCompressed(start: number, endExclusive: number, signal?: AbortSignal, alloc?: BodyAlloc): Promise<Buffer>;
}

/** The one method of RegistryClient the read path needs (retries and per-request timeouts are the client's). */
export interface RangeFetcher {
  fetchRange(ref: Reference, desc: Descriptor, start: number, endExclusive: number, alloc?: BodyAlloc): Promise<Buffer>;
}

export function registrySpanSource(client: RangeFetcher, ref: Reference, desc: Descriptor): SpanSource {
  return {
    fetchCompressed: (start, end, signal, alloc) => raceAbort(client.fetchRange(ref, desc, start, end, alloc), signal, `GET ${desc.digest} [${start}, ${end})`),
  };
}

/** A layer blob in a local file (tests, OCI layouts, content stores). */
export function fileSpanSource(path: string): SpanSource {
  return {
    async fetchCompressed(start, end, signal, alloc = Buffer.allocUnsafe) {
      checkRange(start, end, path);
      signal?.throwIfAborted();
      const fh = await open(path, 'r');
      try {
        const out = alloc(end - start);
        let done = 0;
        while (done < out.length) {
          const { bytesRead } = await fh.read(out, done, out.length - done, start + done);
          if (bytesRead === 0) throw invalidArgument(`${path}: range [${start}, ${end}) lies past the end of the file`);
          done += bytesRead;
        }
        return out;
      } finally {
        await fh.close();
      }
    },
  };
}

function checkRange(start: number, end: number, what: string): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw invalidArgument(`${what}: bad byte range [${start}, ${end})`);
  }
}

/**
 * The registry client takes no AbortSignal, so an abort settles the caller's promise at once while
 * the request itself ends under the client's own timeouts; its late result is dropped.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError' && reason.name !== 'TimeoutError') return reason;
  return unavailable(`${what}: ${reason instanceof Error && reason.name === 'TimeoutError' ? 'timed out' : 'aborted'}`, reason);
}
