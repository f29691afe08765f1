import { invalidArgument, isKind, notFound } from '../errors/errors.js';
import type { LocalStore } from '../store/local-store.js';
import { sha256Digest } from '../ztoc/digest.js';
import type { Manifest } from '../ztoc/oci.js';
import { sociIndexDigestOf } from '../ztoc/soci-image-index.js';
import { ARTIFACT_TYPE_SOCI_V1, parseSociIndex, type ParsedSociIndex } from '../ztoc/soci-index.js';
import type { Reference } from './registry/reference.js';
import type { RegistryClient } from './registry/registry-client.js';

/** How an index was found (spec §4), for logs, metrics and `soci` output. */
export type IndexDiscovery = 'explicit' | 'local' | 'v2-annotation' | 'v1-referrers';

export interface FoundIndex {
  digest: string;
  bytes: Buffer;
  parsed: ParsedSociIndex;
  how: IndexDiscovery;
}

export interface IndexFinderOptions {
  /** SOCI v1: referrers API / fallback tag (config pull_modes.soci_v1.enable). */
  v1: boolean;
  /** SOCI v2: annotation on the image manifest (config pull_modes.soci_v2.enable). */
  v2: boolean;
  /** A fetched zTOC could not be kept in the local store (it is fetched again next time). */
  storeFailed?: (digest: string, err: unknown) => void;
}

/**
 * Finds the SOCI index of an image manifest the way the runtime does: an explicit digest,
 * then the local store, then the v2 annotation on the manifest, then v1 referrers. What is
 * fetched from the registry is verified and kept in the local store.
 */
export class SociIndexFinder {
  private readonly ztocFetches = new Map<string, Promise<Buffer>>();
  /** zTOCs being written to the local store. */
  private readonly storing = new Map<string, Promise<void>>();

  constructor(
    private readonly client: RegistryClient,
    private readonly store: LocalStore,
    private readonly opts: IndexFinderOptions,
  ) {}

  async find(repo: Reference, manifestDigest: string, explicit?: string): Promise<FoundIndex | undefined> {
    if (explicit) return this.load(repo, explicit, 'explicit');
    const local = this.store.db.listIndexes({ manifestDigest }).find((i) => (i.version === 'v1' ? this.opts.v1 : this.opts.v2));
    if (local && (await this.store.content.has(local.digest))) return this.load(repo, local.digest, 'local');
    if (this.opts.v2) {
      const { bytes } = await this.client.getManifest(repo, manifestDigest);
      const digest = sociIndexDigestOf(JSON.parse(bytes.toString('utf8')) as Manifest);
      if (digest) return this.load(repo, digest, 'v2-annotation');
    }
    if (this.opts.v1) {
      const refs = await this.client.referrers(repo, manifestDigest, ARTIFACT_TYPE_SOCI_V1);
      const newest = refs.at(-1);
      if (newest) return this.load(repo, newest.digest, 'v1-referrers');
    }
    return undefined;
  }

  private async load(repo: Reference, digest: string, how: IndexDiscovery): Promise<FoundIndex> {
    let bytes: Buffer;
    if (await this.store.content.has(digest)) {
      bytes = await this.store.content.get(digest);
    } else {
      try {
        bytes = (await this.client.getManifest(repo, digest)).bytes;
      } catch (e) {
        if (isKind(e, 'not-found')) throw notFound(`soci index ${digest} not found in ${repo.domain}/${repo.path}`, e);
        throw e;
      }
      if (sha256Digest(bytes) !== digest) throw invalidArgument(`soci index ${digest}: registry returned other bytes`);
      await this.store.content.putVerified(bytes, digest);
    }
    return { digest, bytes, parsed: parseSociIndex(bytes, `soci index ${digest}`), how };
  }

  /** A zTOC from the local store, else from the registry (stored then); one fetch per digest at a time. */
  ztoc(repo: Reference, digest: string, size: number): Promise<Buffer> {
    let p = this.ztocFetches.get(digest);
    if (!p) {
      p = this.loadZtoc(repo, digest, size).finally(() => this.ztocFetches.delete(digest));
      this.ztocFetches.set(digest, p);
    }
    return p;
  }

  private async loadZtoc(repo: Reference, digest: string, size: number): Promise<Buffer> {
    await this.storing.get(digest);
    if (await this.store.content.has(digest)) return this.store.content.get(digest);
    const bytes = await this.client.getBlob(repo, { mediaType: 'application/octet-stream', digest, size });
    // getBlob verified the bytes; the mount need not wait for the disk (a 35 MiB zTOC took
    // 70-760 ms to write and sync during a pull).
    const stored = this.store.content
      .putVerified(bytes, digest)
      .then(() => undefined, (err: unknown) => this.opts.storeFailed?.(digest, err))
      .finally(() => this.storing.delete(digest));
    this.storing.set(digest, stored);
    return bytes;
  }

  /** Resolves once every zTOC fetched so far is in the local store (or failed to be). */
  async stored(): Promise<void> {
    await Promise.all(this.storing.values());
  }
}
