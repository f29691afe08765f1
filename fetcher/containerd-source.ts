import { isKind, notFound } from '../errors/errors.js';
import type { Descriptor } from '../ztoc/oci.js';
import type { ContainerdClient } from './containerd-client.js';
import type { ImageSink, ImageSource } from './image-source.js';
import { verifyStream } from './verify-stream.js';
import { formatReference, parseReference } from './registry/reference.js';

/** containerd names images by their normalized reference; users often type the short form. */
export function containerdNameCandidates(ref: string): string[] {
  try {
    return [...new Set([ref, formatReference(parseReference(ref))])];
  } catch {
    return [ref];
  }
}

/** Reads images from containerd's content store (after `nerdctl pull` / `ctr pull`). */
export class ContainerdImageSource implements ImageSource {
  constructor(
    readonly client: ContainerdClient,
    readonly origin: string,
  ) {}

  async resolve(ref: string): Promise<Descriptor> {
    for (const name of containerdNameCandidates(ref)) {
      try {
        return (await this.client.getImage(name)).target;
      } catch (e) {
        if (!isKind(e, 'not-found')) throw e;
      }
    }
    throw notFound(`image ${ref} not found in ${this.origin}`);
  }

  async readBlob(desc: Descriptor): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.streamBlob(desc)) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  }

  streamBlob(desc: Descriptor): AsyncIterable<Uint8Array> {
    return verifyStream(desc, this.client.readContent(desc.digest), `containerd content`);
  }

  async readRange(desc: Descriptor, offset: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.client.readContent(desc.digest, { offset, size: length })) parts.push(c);
    const buf = Buffer.concat(parts);
    if (buf.length !== length) throw notFound(`containerd content ${desc.digest}: short read at ${offset} (${buf.length} of ${length})`);
    return buf;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * Writes a converted image into containerd's content store. Everything is written under one
 * lease so that containerd's garbage collector cannot drop blobs before the image record
 * (created last) references them.
 */
export class ContainerdSink implements ImageSink {
  private leased: ContainerdClient | undefined;
  private leaseId: string | undefined;

  constructor(private readonly client: ContainerdClient) {}

  private async withLease(): Promise<ContainerdClient> {
    if (!this.leased) {
      const lease = await this.client.createLease({ ttl: 3600_000 });
      this.leaseId = lease.id;
      this.leased = this.client.withLease(lease.id);
    }
    return this.leased;
  }

  async writeBlob(desc: Descriptor, bytes: Uint8Array, labels?: Record<string, string>): Promise<void> {
    const c = await this.withLease();
    await c.writeContent(`soci-${desc.digest}`, Buffer.from(bytes), { expectedDigest: desc.digest, expectedSize: desc.size, labels });
  }

  async copyBlob(desc: Descriptor, from: ImageSource): Promise<void> {
    const c = await this.withLease();
    try {
      await c.contentInfo(desc.digest);
      return;
    } catch (e) {
      if (!isKind(e, 'not-found')) throw e;
    }
    const chunks = async function* (): AsyncGenerator<Buffer> {
      for await (const x of from.streamBlob(desc)) yield Buffer.from(x);
    };
    await c.writeContent(`soci-${desc.digest}`, chunks(), { expectedDigest: desc.digest, expectedSize: desc.size });
  }

  async tagImage(name: string, desc: Descriptor): Promise<void> {
    const c = await this.withLease();
    try {
      await c.createImage({ name, target: desc });
    } catch (e) {
      if (!isKind(e, 'already-exists')) throw e;
      await c.updateImage({ name, target: desc }, ['target']);
    }
  }

  async close(): Promise<void> {
    if (this.leaseId) await this.client.deleteLease(this.leaseId).catch(() => undefined);
    this.client.close();
  }
}
