/**
 * A containerd client over its gRPC socket for the CLI (create/convert/rpull): images, content,
 * leases, snapshots and diff services. Every call carries the namespace as metadata
 * `containerd-namespace`, and the lease (if any) as `containerd-lease`.
 */
import * as grpc from '@grpc/grpc-js';
import { invalidArgument } from '../errors/errors.js';
import { loadProtos, serviceConstructor } from './proto-loader.js';
import { duplexCall, serverStreamCall, unaryCall } from './grpc-call.js';
import { SnapshotsClient } from './containerd-snapshots.js';
import { runWrite, type WriteContentRequest, type WriteContentResponse, type WriteOptions, type WriteResult } from './containerd-write.js';
import {
  fromWireContentInfo, fromWireDescriptor, fromWireImage, fromWireLease, toWireDescriptor, toWireMount,
  type ContentInfo, type Descriptor, type ImageRecord, type Lease, type Mount,
  type WireContentInfo, type WireDescriptor, type WireImage, type WireLease,
} from './containerd-types.js';

export type { WriteOptions, WriteResult } from './containerd-write.js';
export { SnapshotsClient } from './containerd-snapshots.js';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';
/** containerd's garbage collector removes a lease carrying this label after the given time. */
export const LEASE_EXPIRE_LABEL = 'containerd.io/gc.expire';

const API = 'containerd.services';

/** The grpc-js clients of one connection, shared by every view (lease) of a ContainerdClient. */
export interface ContainerdServices {
  content: grpc.Client;
  images: grpc.Client;
  leases: grpc.Client;
  snapshots: grpc.Client;
  diff: grpc.Client;
}

export interface ContainerdClientOptions {
  /** A socket path, or a grpc-js target such as `unix:///run/containerd/containerd.sock`. */
  address: string;
  namespace: string;
  lease?: string;
}

export function grpcTarget(address: string): string {
  return address.startsWith('/') ? `unix://${address}` : address;
}

function connect(address: string): ContainerdServices {
  const root = loadProtos();
  const target = grpcTarget(address);
  const credentials = grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 16 << 20,
    // A larger HTTP/2 receive window than the 64 KiB default speeds up Content.Read streams.
    'grpc-node.flow_control_window': 8 << 20,
  };
  const make = (name: string): grpc.Client => new (serviceConstructor(root, `${API}.${name}`))(target, credentials, options);
  return {
    content: make('content.v1.Content'),
    images: make('images.v1.Images'),
    leases: make('leases.v1.Leases'),
    snapshots: make('snapshots.v1.Snapshots'),
    diff: make('diff.v1.Diff'),
  };
}

export class ContainerdClient {
  readonly address: string;
  readonly namespace: string;
  readonly lease: string | undefined;
  private readonly services: ContainerdServices;

  /** `services` lets withLease() share one connection; callers normally omit it. */
  constructor(opts: ContainerdClientOptions, services?: ContainerdServices) {
    if (!opts.namespace) throw invalidArgument('containerd client: namespace must not be empty');
    this.address = opts.address;
    this.namespace = opts.namespace;
    this.lease = opts.lease;
    this.services = services ?? connect(opts.address);
  }

  /** A client on the same connection whose calls all run under the given lease. */
  withLease(lease: string): ContainerdClient {
    return new ContainerdClient({ address: this.address, namespace: this.namespace, lease }, this.services);
  }

  close(): void {
    for (const client of Object.values(this.services)) client.close();
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(NAMESPACE_HEADER, this.namespace);
    if (this.lease) md.set(LEASE_HEADER, this.lease);
    return md;
  }

  private call<Res>(service: keyof ContainerdServices, name: string, req: object, context: string): Promise<Res> {
    return unaryCall<Res>(this.services[service], name, req, this.metadata(), `containerd ${context}`);
  }

  // ---- images ----

  async getImage(name: string): Promise<ImageRecord> {
    const res = await this.call<{ image: WireImage }>('images', 'Get', { name }, `Images.Get "${name}"`);
    return fromWireImage(res.image);
  }

  async listImages(filters: string[] = []): Promise<ImageRecord[]> {
    const res = await this.call<{ images: WireImage[] }>('images', 'List', { filters }, 'Images.List');
    return res.images.map(fromWireImage);
  }

  async createImage(image: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord> {
    const wire = { name: image.name, target: toWireDescriptor(image.target), labels: image.labels ?? {} };
    const res = await this.call<{ image: WireImage }>('images', 'Create', { image: wire }, `Images.Create "${image.name}"`);
    return fromWireImage(res.image);
  }

  /**
   * Updates the fields given (target, labels). `updateMask` defaults to the fields present;
   * `labels.<key>` paths change single labels.
   */
  async updateImage(
    image: { name: string; target?: Descriptor; labels?: Record<string, string> },
    updateMask?: string[],
  ): Promise<ImageRecord> {
    const paths = updateMask ?? [...(image.target ? ['target'] : []), ...(image.labels ? ['labels'] : [])];
    const wire = {
      name: image.name,
      labels: image.labels ?? {},
      target: image.target ? toWireDescriptor(image.target) : null,
    };
    const res = await this.call<{ image: WireImage }>('images', 'Update', { image: wire, update_mask: { paths } },
      `Images.Update "${image.name}"`);
    return fromWireImage(res.image);
  }

  async deleteImage(name: string, opts: { sync?: boolean } = {}): Promise<void> {
    await this.call('images', 'Delete', { name, sync: opts.sync ?? false }, `Images.Delete "${name}"`);
  }

  // ---- content ----

  async contentInfo(digest: string): Promise<ContentInfo> {
    const res = await this.call<{ info: WireContentInfo }>('content', 'Info', { digest }, `Content.Info ${digest}`);
    return fromWireContentInfo(res.info);
  }

  /** Streams a blob (or the range offset..offset+size) as the server's chunks. */
  async *readContent(digest: string, opts: { offset?: number; size?: number } = {}): AsyncGenerator<Buffer> {
    const req = { digest, offset: opts.offset ?? 0, size: opts.size ?? 0 };
    const stream = serverStreamCall<{ offset: number; data: Buffer }>(this.services.content, 'Read', req, this.metadata(),
      `containerd Content.Read ${digest}`);
    for await (const msg of stream) yield msg.data;
  }

  /** A whole blob in memory: for manifests, configs and indexes, not layers. */
  async readContentAll(digest: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.readContent(digest)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /**
   * Stores a blob through the Write stream. A blob already present counts as written; its
   * labels are then set with an Update so the result is the same either way.
   */
  async writeContent(ref: string, data: Buffer | AsyncIterable<Buffer>, opts: WriteOptions = {}): Promise<WriteResult> {
    const stream = duplexCall<WriteContentRequest, WriteContentResponse>(this.services.content, 'Write', this.metadata());
    const result = await runWrite(stream, ref, data, opts);
    if (!result.existed) return result;
    const labels = opts.labels ?? {};
    const info = Object.keys(labels).length > 0
      ? await this.updateContentLabels(result.digest, labels)
      : await this.contentInfo(result.digest);
    return { ...result, size: info.size };
  }

  /** Sets the given labels (an empty value removes one); other labels stay. */
  async updateContentLabels(digest: string, labels: Record<string, string>): Promise<ContentInfo> {
    const paths = Object.keys(labels).map((k) => `labels.${k}`);
    const info = { digest, size: 0, labels };
    const res = await this.call<{ info: WireContentInfo }>('content', 'Update', { info, update_mask: { paths } },
      `Content.Update ${digest}`);
    return fromWireContentInfo(res.info);
  }

  async deleteContent(digest: string): Promise<void> {
    await this.call('content', 'Delete', { digest }, `Content.Delete ${digest}`);
  }

  async abortWrite(ref: string): Promise<void> {
    await this.call('content', 'Abort', { ref }, `Content.Abort ref ${ref}`);
  }

  // ---- leases ----

  /** `ttl` in milliseconds: containerd's GC drops the lease after it. */
  async createLease(opts: { id?: string; ttl?: number; labels?: Record<string, string> } = {}): Promise<Lease> {
    const labels = { ...(opts.labels ?? {}) };
    if (opts.ttl !== undefined) labels[LEASE_EXPIRE_LABEL] = new Date(Date.now() + opts.ttl).toISOString();
    const res = await this.call<{ lease: WireLease }>('leases', 'Create', { id: opts.id ?? '', labels },
      `Leases.Create "${opts.id ?? '(random)'}"`);
    return fromWireLease(res.lease);
  }

  async deleteLease(id: string, opts: { sync?: boolean } = {}): Promise<void> {
    await this.call('leases', 'Delete', { id, sync: opts.sync ?? false }, `Leases.Delete "${id}"`);
  }

  async listLeases(filters: string[] = []): Promise<Lease[]> {
    const res = await this.call<{ leases: WireLease[] }>('leases', 'List', { filters }, 'Leases.List');
    return res.leases.map(fromWireLease);
  }

  // ---- snapshots and diff ----

  snapshots(snapshotter: string): SnapshotsClient {
    return new SnapshotsClient(this.services.snapshots, snapshotter, () => this.metadata());
  }

  /** Unpacks a layer blob from the content store into mounts; returns the uncompressed diff's descriptor. */
  async diffApply(layer: Descriptor, mounts: Mount[]): Promise<Descriptor> {
    const req = { diff: toWireDescriptor(layer), mounts: mounts.map(toWireMount), payloads: {} };
    const res = await this.call<{ applied: WireDescriptor }>('diff', 'Apply', req, `Diff.Apply ${layer.digest}`);
    return fromWireDescriptor(res.applied);
  }
}
