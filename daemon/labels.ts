/**
 * Label checks for snapshot requests. Per label, containerd's own limit (key plus value at most
 * 4096 bytes); over all labels of one snapshot a cap of our own, so a client cannot make the
 * metadata db hold megabytes per row.
 */
import { invalidArgument } from '../errors/errors.js';

export const MAX_LABEL_BYTES = 4096;
export const MAX_TOTAL_LABEL_BYTES = 64 * 1024;

export type Labels = Record<string, string>;

function shown(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 80 ? `${q.slice(0, 77)}..."` : q;
}

/** Throws invalid-argument naming `what` (e.g. `snapshot "k" in namespace "default"`) and the label. */
export function validateLabels(labels: Labels, what: string): void {
  let total = 0;
  for (const [k, v] of Object.entries(labels)) {
    if (typeof k !== 'string' || typeof v !== 'string') throw invalidArgument(`${what}: label values must be strings`);
    if (k === '') throw invalidArgument(`${what}: label key must not be empty`);
    if (k.includes('\0') || v.includes('\0')) throw invalidArgument(`${what}: label ${shown(k)} contains a NUL byte`);
    const size = Buffer.byteLength(k) + Buffer.byteLength(v);
    if (size > MAX_LABEL_BYTES) {
      throw invalidArgument(`${what}: label ${shown(k)} is ${size} bytes; key and value may have at most ${MAX_LABEL_BYTES} bytes`);
    }
    total += size;
  }
  if (total > MAX_TOTAL_LABEL_BYTES) {
    throw invalidArgument(`${what}: labels total ${total} bytes; at most ${MAX_TOTAL_LABEL_BYTES} bytes allowed`);
  }
}
