import { isIndexMediaType, isManifestMediaType, type Descriptor } from '../../ztoc/oci.js';
import type { ImageSink, ImageSource } from '../image-source.js';
import type { Reference } from './reference.js';
import type { RegistryClient } from './registry-client.js';

/**
 * Writes a converted image to a registry repository: blobs by upload (or cross-repository
 * mount from the source repository), manifests and indexes by digest, the name last by tag.
 */
export class RegistrySink implements ImageSink {
  private readonly manifests = new Map<string, { bytes: Buffer; mediaType: string }>();

  constructor(
    private readonly client: RegistryClient,
    private readonly repo: Reference,
    /** The source repository, for cross-repository blob mounts within one registry. */
    private readonly sourceRepo?: Reference,
  ) {}

  async writeBlob(desc: Descriptor, bytes: Uint8Array): Promise<void> {
    const buf = Buffer.from(bytes);
    if (isManifestMediaType(desc.mediaType) || isIndexMediaType(desc.mediaType)) {
      this.manifests.set(desc.digest, { bytes: buf, mediaType: desc.mediaType });
      await this.client.pushManifest(this.repo, desc.digest, buf, desc.mediaType);
      return;
    }
    await this.client.pushBlob(this.repo, desc, buf);
  }

  async copyBlob(desc: Descriptor, from: ImageSource): Promise<void> {
    const mountFrom = this.sourceRepo?.domain === this.repo.domain ? this.sourceRepo.path : undefined;
    await this.client.pushBlob(this.repo, desc, () => from.streamBlob(desc), { mountFrom });
  }

  async tagImage(name: string, desc: Descriptor): Promise<void> {
    const m = this.manifests.get(desc.digest);
    if (!m) throw new Error(`registry sink: ${desc.digest} was not written before tagging ${name}`);
    await this.client.pushManifest(this.repo, this.repo.tag ?? 'latest', m.bytes, m.mediaType);
  }

  async close(): Promise<void> {}
}
