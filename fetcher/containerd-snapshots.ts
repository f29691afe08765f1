/**
 * containerd's Snapshots service for one snapshotter name. Through containerd's own socket the
 * calls are recorded in containerd's metadata and forwarded to the snapshotter (a proxy plugin
 * such as "soci", or the built-in "overlayfs").
 */
import type * as grpc from '@grpc/grpc-js';
import { serverStreamCall, unaryCall } from './grpc-call.js';
import {
  fromWireMount, fromWireSnapshotInfo, toTimestamp,
  type Mount, type SnapshotInfo, type WireMount, type WireSnapshotInfo,
} from './containerd-types.js';

export interface SnapshotUsage {
  size: number;
  inodes: number;
}

export class SnapshotsClient {
  constructor(
    private readonly client: grpc.Client,
    readonly snapshotter: string,
    private readonly metadata: () => grpc.Metadata,
  ) {}

  private call<Res>(name: string, req: object, object: string): Promise<Res> {
    return unaryCall<Res>(this.client, name, { snapshotter: this.snapshotter, ...req }, this.metadata(),
      `containerd Snapshots.${name} ${this.snapshotter} "${object}"`);
  }

  async prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('Prepare', { key, parent, labels }, key);
    return res.mounts.map(fromWireMount);
  }

  async view(key: string, parent = '', labels: Record<string, string> = {}): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('View', { key, parent, labels }, key);
    return res.mounts.map(fromWireMount);
  }

  async mounts(key: string): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('Mounts', { key }, key);
    return res.mounts.map(fromWireMount);
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.call('Commit', { name, key, labels }, `${key} -> ${name}`);
  }

  async remove(key: string): Promise<void> {
    await this.call('Remove', { key }, key);
  }

  async stat(key: string): Promise<SnapshotInfo> {
    const res = await this.call<{ info: WireSnapshotInfo }>('Stat', { key }, key);
    return fromWireSnapshotInfo(res.info);
  }

  /** Sets labels; `paths` defaults to `labels.<key>` for each given key (an empty value removes it). */
  async updateLabels(key: string, labels: Record<string, string>, paths?: string[]): Promise<SnapshotInfo> {
    const now = toTimestamp(new Date(0));
    const info = { name: key, parent: '', kind: 'UNKNOWN', created_at: now, updated_at: now, labels };
    const update_mask = { paths: paths ?? Object.keys(labels).map((k) => `labels.${k}`) };
    const res = await this.call<{ info: WireSnapshotInfo }>('Update', { info, update_mask }, key);
    return fromWireSnapshotInfo(res.info);
  }

  async usage(key: string): Promise<SnapshotUsage> {
    const res = await this.call<{ size: number; inodes: number }>('Usage', { key }, key);
    return { size: Number(res.size), inodes: Number(res.inodes) };
  }

  async list(filters: string[] = []): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    const stream = serverStreamCall<{ info: WireSnapshotInfo[] }>(this.client, 'List',
      { snapshotter: this.snapshotter, filters }, this.metadata(), `containerd Snapshots.List ${this.snapshotter}`);
    for await (const msg of stream) out.push(...msg.info.map(fromWireSnapshotInfo));
    return out;
  }

  async cleanup(): Promise<void> {
    await this.call('Cleanup', {}, '*');
  }
}
