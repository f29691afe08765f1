import { createHash } from 'node:crypto';
import { invalidArgument } from '../errors/errors.js';
import type { Descriptor } from '../ztoc/oci.js';

/** Passes chunks through and fails at the end unless they hash to desc.digest and sum to desc.size. */
export async function* verifyStream(desc: Descriptor, chunks: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  const h = createHash('sha256');
  let n = 0;
  for await (const c of chunks) {
    h.update(c);
    n += c.length;
    if (n > desc.size) throw invalidArgument(`${what} ${desc.digest}: more than the expected ${desc.size} bytes`);
    yield c;
  }
  if (n !== desc.size) throw invalidArgument(`${what} ${desc.digest}: truncated, ${n} of ${desc.size} bytes`);
  const got = 'sha256:' + h.digest('hex');
  if (got !== desc.digest) throw invalidArgument(`${what} ${desc.digest}: digest mismatch, content hashes to ${got}`);
}
