import { createHash } from 'node:crypto';
import { invalidArgument } from '../errors/errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(data: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Validates a `sha256:<hex>` digest and returns its hex part. */
export function digestHex(digest: string, what = 'digest'): string {
  if (!DIGEST_RE.test(digest)) throw invalidArgument(`${what} ${JSON.stringify(digest)} is not a sha256 digest`);
  return digest.slice('sha256:'.length);
}
