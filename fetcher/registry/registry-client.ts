import type { Descriptor } from '../../ztoc/oci.js';
import { Authorizer, type TokenGet } from './auth.js';
import { anonymous, type CredentialSource } from './credentials.js';
import { DEFAULT_TIMEOUTS, HttpPools, readBody, type BodyAlloc, type Timeouts } from './http.js';
import * as pull from './pull.js';
import * as push from './push.js';
import { toReference, type Reference } from './reference.js';
import * as refs from './referrers.js';
import { DEFAULT_RETRY, RetryableError, isRetryableStatus, parseRetryAfter, withRetries, type RetryPolicy } from './retry.js';
import { Transport, type Logger } from './transport.js';

export { selectPlatformManifest } from './platform-select.js';

/** The one OCI distribution client of the CLI and the daemon. */
export interface RegistryClientOptions {
  /** containerd config_path for hosts.toml, e.g. /etc/containerd/certs.d */
  hostsDir?: string;
  /** true: all hosts over plain HTTP; a list: these hosts. localhost/127.0.0.1/::1 always. */
  plainHttp?: boolean | string[];
  credentials?: CredentialSource;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number; totalMs?: number };
  retries?: { max?: number; baseMs?: number; maxMs?: number };
  userAgent?: string;
  logger?: Logger;
  /** Keep-alive connections per origin (default 8). */
  connections?: number;
  /** Largest blob getBlob holds in memory (default 512 MiB). */
  maxBlobBytes?: number;
  /** Upload chunk above which pushBlob PATCHes in chunks (default 16 MiB). */
  uploadChunkBytes?: number;
}

const TOKEN_LIMIT = 1 << 20;

export class RegistryClient {
  private readonly pools: HttpPools;
  private readonly transport: Transport;
  private readonly retry: RetryPolicy;
  private readonly maxBlobBytes: number;
  private readonly chunk: number;

  constructor(opts: RegistryClientOptions = {}) {
    const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.retry = { ...DEFAULT_RETRY, ...opts.retries };
    this.maxBlobBytes = opts.maxBlobBytes ?? 512 << 20;
    this.chunk = opts.uploadChunkBytes ?? push.DEFAULT_CHUNK;
    this.pools = new HttpPools({ timeouts, connections: opts.connections ?? 8 });
    const authorizer = new Authorizer(opts.credentials ?? anonymous, this.tokenGet(timeouts));
    this.transport = new Transport({
      hostsDir: opts.hostsDir,
      hosts: { plainHttp: opts.plainHttp },
      timeouts,
      retry: this.retry,
      userAgent: opts.userAgent ?? 'soci-snapshotter-node/0.1',
      logger: opts.logger,
      authorizer,
      pools: this.pools,
    });
  }

  /** Token realm GETs, with the same retries as registry requests. */
  private tokenGet(timeouts: Timeouts): TokenGet {
    return (url, headers) =>
      withRetries({ what: `token from ${url.origin}${url.pathname}`, policy: this.retry, deadline: timeouts.totalMs ? Date.now() + timeouts.totalMs : undefined }, async () => {
        const res = await this.pools.request({ method: 'GET', url, headers });
        if (isRetryableStatus(res.statusCode)) {
          await res.body.dump().catch(() => undefined);
          throw new RetryableError(`token from ${url.origin}: HTTP ${res.statusCode}`, parseRetryAfter(res.headers['retry-after']));
        }
        return { status: res.statusCode, body: await readBody(res, TOKEN_LIMIT, `token from ${url.origin}`) };
      });
  }

  async resolve(ref: string | Reference): Promise<{ ref: Reference; desc: Descriptor }> {
    const r = toReference(ref);
    return { ref: r, desc: await pull.resolve(this.transport, r) };
  }

  getManifest(ref: Reference, digestOrTag: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
    return pull.getManifest(this.transport, ref, digestOrTag);
  }

  getBlob(ref: Reference, desc: Descriptor): Promise<Buffer> {
    return pull.getBlob(this.transport, ref, desc, this.maxBlobBytes);
  }

  streamBlob(ref: Reference, desc: Descriptor): AsyncIterable<Uint8Array> {
    return pull.streamBlob(this.transport, ref, desc, this.retry.max);
  }

  fetchRange(ref: Reference, desc: Descriptor, start: number, endExclusive: number, alloc?: BodyAlloc): Promise<Buffer> {
    return pull.fetchRange(this.transport, ref, desc, start, endExclusive, alloc);
  }

  hasBlob(ref: Reference, digest: string): Promise<boolean> {
    return pull.hasBlob(this.transport, ref, digest);
  }

  pushBlob(ref: Reference, desc: Descriptor, data: Buffer | (() => AsyncIterable<Uint8Array>), opts: { mountFrom?: string } = {}): Promise<void> {
    return push.pushBlob(this.transport, ref, desc, data, this.retry, { mountFrom: opts.mountFrom, chunkSize: this.chunk });
  }

  pushManifest(ref: Reference, tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; ociSubject: boolean }> {
    return push.pushManifest(this.transport, ref, tagOrDigest, bytes, mediaType);
  }

  referrers(ref: Reference, subject: string, artifactType?: string): Promise<Descriptor[]> {
    return refs.referrers(this.transport, ref, subject, artifactType);
  }

  updateReferrersFallback(ref: Reference, subject: Descriptor, referrer: Descriptor): Promise<void> {
    return refs.updateReferrersFallback(this.transport, ref, subject, referrer);
  }

  async close(): Promise<void> {
    await this.pools.close();
  }
}
