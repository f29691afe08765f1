/**
 * The snapshotter's operations (what the gRPC service exposes), over the metadata store, the
 * snapshot directories and the mount rules. The remote preparer is where lazily loaded layers
 * plug in: Prepare asks it first whenever containerd names the layer's target snapshot.
 */
import { alreadyExists, failedPrecondition, isKind } from '../errors/errors.js';
import { mountsFor, type Mount } from './mounts.js';
import { SnapshotDirs } from './snapshot-dirs.js';
import { describeKey, SnapshotStore, type RemoteLayer, type Scope, type Snapshot, type SnapshotInfo, type Usage } from './snapshot-store.js';
import { diskUsage } from './usage.js';
import { validateLabels, type Labels } from './labels.js';

/** containerd's label naming the committed snapshot a Prepare is meant to become (the chain ID). */
import { TARGET_SNAPSHOT_LABEL } from './handshake-labels.js';
export { TARGET_SNAPSHOT_LABEL };

export interface RemotePreparer {
  /**
   * Called by Prepare when `labels` carry TARGET_SNAPSHOT_LABEL. Returning `committedAs` means
   * the layer is served without containerd (the snapshot exists committed under that name in
   * store namespace `scope`); Prepare then answers AlreadyExists, containerd's remote-snapshot
   * handshake. `ns` is the containerd namespace (for registry credentials, content); `scope` the
   * store namespace to create snapshots in (see snapshot-store.ts).
   */
  tryPrepareRemote(ns: string, key: string, parent: string, labels: Labels, scope: Scope): Promise<'not-remote' | { committedAs: string }>;
  /** Called before a removed snapshot's directory is deleted (e.g. to unmount its FUSE filesystem). */
  release?(snapshot: Snapshot): Promise<void>;
}

/**
 * The containerd namespace of a request: the header if sent, else the first part of
 * containerd's backend key `<namespace>/<n>/<key>`; '' if neither tells.
 */
export function containerdNamespace(scope: Scope, key: string): string {
  if (scope !== '') return scope;
  const m = /^([A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*)\/\d+\//.exec(key);
  return m ? m[1] : '';
}

export const plainPreparer: RemotePreparer = {
  tryPrepareRemote: async () => 'not-remote',
};

export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SnapshotterOptions {
  root: string;
  store: SnapshotStore;
  remote?: RemotePreparer;
  overlayOptions: readonly string[];
  log: Logger;
}

export class Snapshotter {
  readonly dirs: SnapshotDirs;
  readonly store: SnapshotStore;
  private readonly remote: RemotePreparer;
  private readonly overlayOptions: readonly string[];
  private readonly log: Logger;

  constructor(opts: SnapshotterOptions) {
    this.dirs = new SnapshotDirs(opts.root);
    this.store = opts.store;
    this.remote = opts.remote ?? plainPreparer;
    this.overlayOptions = opts.overlayOptions;
    this.log = opts.log;
  }

  mountsOf(snap: Snapshot): Mount[] {
    return mountsFor(snap, this.dirs, this.overlayOptions);
  }

  async prepare(ns: Scope, key: string, parent: string, labels: Labels): Promise<Mount[]> {
    const target = labels[TARGET_SNAPSHOT_LABEL];
    if (target !== undefined && target !== '') {
      // Checked before the remote path, so that bad labels cost no registry round trips.
      validateLabels(labels, describeKey(ns, key));
      const res = await this.remote.tryPrepareRemote(containerdNamespace(ns, key), key, parent, labels, ns);
      if (res !== 'not-remote') {
        throw alreadyExists(`target snapshot ${JSON.stringify(res.committedAs)} already exists (prepared remotely for ${describeKey(ns, key)})`);
      }
    }
    return this.create(ns, 'ACTIVE', key, parent, labels);
  }

  async view(ns: Scope, key: string, parent: string, labels: Labels): Promise<Mount[]> {
    return this.create(ns, 'VIEW', key, parent, labels);
  }

  private async create(ns: Scope, kind: 'ACTIVE' | 'VIEW', key: string, parent: string, labels: Labels): Promise<Mount[]> {
    const snap = this.store.create(ns, { kind, key, parent, labels });
    try {
      await this.dirs.create(snap.id);
    } catch (err) {
      this.store.remove(ns, key);
      throw err;
    }
    return this.mountsOf(snap);
  }

  /** Whether a snapshot named `key` exists in store namespace `ns`. */
  exists(ns: Scope, key: string): boolean {
    try {
      this.store.get(ns, key);
      return true;
    } catch (err) {
      if (isKind(err, 'not-found')) return false;
      throw err;
    }
  }

  /**
   * Creates a committed snapshot `name` whose directory `fill` provides (a FUSE mount of a
   * lazy layer, or a layer unpacked by the daemon), for containerd's remote-snapshot handshake.
   * On failure nothing is left: no record, no directory.
   */
  async commitRemote(ns: Scope, req: { key: string; parent: string; name: string; labels: Labels; remote: RemoteLayer | null }, fill: (fsDir: string) => Promise<'lazy' | 'local'>): Promise<Snapshot> {
    const snap = this.store.create(ns, { kind: 'ACTIVE', key: req.key, parent: req.parent, labels: req.labels, remote: req.remote });
    try {
      await this.dirs.create(snap.id);
      const mode = await fill(this.dirs.fs(snap.id));
      // A lazy layer occupies nothing in the snapshot dir (its spans live in the cache); a local one is measured.
      const usage = mode === 'local' ? await diskUsage(this.dirs.fs(snap.id)) : { size: 0, inodes: 0 };
      return this.store.commit(ns, { key: req.key, name: req.name, labels: req.labels, usage });
    } catch (err) {
      this.store.remove(ns, req.key);
      await this.dirs.remove(snap.id).catch(() => undefined);
      throw err;
    }
  }

  /** The directory a snapshot's filesystem lives in (a FUSE mountpoint for lazy layers). */
  fsDir(snap: Snapshot): string {
    return this.dirs.fs(snap.id);
  }

  mounts(ns: Scope, key: string): Mount[] {
    const snap = this.store.get(ns, key);
    if (snap.info.kind === 'COMMITTED') {
      throw failedPrecondition(`${describeKey(ns, key)} is committed; only active snapshots and views have mounts`);
    }
    return this.mountsOf(snap);
  }

  async commit(ns: Scope, name: string, key: string, labels: Labels): Promise<void> {
    const snap = this.store.get(ns, key);
    // Checked here too so that a view is refused before its tree is walked.
    if (snap.info.kind !== 'ACTIVE') {
      throw failedPrecondition(`${describeKey(ns, key)} is a ${snap.info.kind.toLowerCase()} snapshot; only active snapshots can be committed`);
    }
    const usage = await diskUsage(this.dirs.fs(snap.id));
    this.store.commit(ns, { key, name, labels, usage });
  }

  async remove(ns: Scope, key: string): Promise<void> {
    const snap = this.store.remove(ns, key);
    try {
      await this.remote.release?.(snap);
      await this.dirs.remove(snap.id);
    } catch (err) {
      // The record is gone; Cleanup removes the directory once whatever holds it lets go.
      this.log.warn({ id: snap.id, key, err: String(err) }, 'snapshot directory not removed; left for Cleanup');
    }
  }

  stat(ns: Scope, key: string): SnapshotInfo {
    return this.store.get(ns, key).info;
  }

  update(ns: Scope, name: string, labels: Labels, paths: readonly string[]): SnapshotInfo {
    return this.store.update(ns, name, labels, paths);
  }

  list(ns: Scope, filters: readonly string[]): SnapshotInfo[] {
    return this.store.list(ns, filters);
  }

  async usage(ns: Scope, key: string): Promise<Usage> {
    const snap = this.store.get(ns, key);
    if (snap.usage) return snap.usage;
    return diskUsage(this.dirs.fs(snap.id));
  }

  async cleanup(): Promise<void> {
    const { removed, busy } = await this.dirs.cleanup(this.store.ids());
    if (removed.length > 0 || busy.length > 0) this.log.info({ removed, busy }, 'cleanup of snapshot directories');
  }
}
