import { failedPrecondition } from '../../errors/errors.js';
import { isIndexMediaType, isManifestMediaType, type Descriptor } from '../../ztoc/oci.js';
import type { ImageSource } from '../image-source.js';
import { formatReference, parseReference, repositoryName, type Reference } from './reference.js';
import type { RegistryClient } from './registry-client.js';

const ARTIFACT_MANIFEST = 'application/vnd.oci.artifact.manifest.v1+json';

/**
 * An image read straight from a registry (no containerd): blobs of the repository last
 * resolved (or given at construction). Manifests go through /manifests/, other blobs /blobs/.
 */
export class RegistryImageSource implements ImageSource {
  private repo: Reference | undefined;

  constructor(
    private readonly client: RegistryClient,
    ref?: string | Reference,
    private readonly ownsClient = false,
  ) {
    if (ref !== undefined) this.repo = typeof ref === 'string' ? parseReference(ref) : ref;
  }

  get origin(): string {
    return this.repo ? `registry ${repositoryName(this.repo)}` : 'registry';
  }

  private repository(): Reference {
    if (!this.repo) throw failedPrecondition('registry image source: no image resolved yet');
    return this.repo;
  }

  async resolve(ref: string): Promise<Descriptor> {
    const r = await this.client.resolve(ref);
    this.repo = r.ref;
    return r.desc;
  }

  async readBlob(desc: Descriptor): Promise<Buffer> {
    const repo = this.repository();
    if (isManifestMediaType(desc.mediaType) || isIndexMediaType(desc.mediaType) || desc.mediaType === ARTIFACT_MANIFEST) {
      const { bytes } = await this.client.getManifest(repo, desc.digest);
      return bytes;
    }
    return this.client.getBlob(repo, desc);
  }

  streamBlob(desc: Descriptor): AsyncIterable<Uint8Array> {
    return this.client.streamBlob(this.repository(), desc);
  }

  readRange(desc: Descriptor, offset: number, length: number): Promise<Buffer> {
    return this.client.fetchRange(this.repository(), desc, offset, offset + length);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  toString(): string {
    return this.repo ? formatReference(this.repo) : 'registry';
  }
}
