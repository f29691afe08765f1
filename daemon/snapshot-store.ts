/**
 * Snapshot metadata in SQLite with the semantics of containerd's overlayfs snapshotter: keys
 * unique per namespace across all kinds, parents must be committed, a snapshot with children
 * cannot be removed, only active snapshots can be committed. Each operation is one transaction.
 *
 * Namespaces: a client that sends `containerd-namespace` gets its own key space. containerd's
 * snapshots (backend keys `<ns>/<n>/<key>`) all live in the namespace '' here, also when its CRI
 * plugin sends the header (daemon/scope.ts).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, internal } from '../errors/errors.js';
import { parseFilters, type FieldAdaptor } from './filters.js';
import { validateLabels, type Labels } from './labels.js';

export type Kind = 'VIEW' | 'ACTIVE' | 'COMMITTED';
/** The namespace a request came with; '' when it sent none (containerd's own calls). */
export type Scope = string;

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: Kind;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface Usage {
  size: number;
  inodes: number;
}

/** What the lazy-loading layer needs to mount a remote snapshot again after a restart. */
export interface RemoteLayer {
  imageRef: string;
  layerDigest: string;
  indexDigest: string;
  namespace: string;
  /** Anything else the remote layer code wants back (e.g. zTOC digest, manifest digest). */
  extra?: Record<string, string>;
}

export interface Snapshot {
  id: number;
  namespace: string;
  info: SnapshotInfo;
  /** Ids of the parent chain, nearest parent first. */
  parentIds: number[];
  /** Stored at commit time; null for active snapshots and views (computed live). */
  usage: Usage | null;
  remote: RemoteLayer | null;
}

export interface CreateRequest {
  kind: 'ACTIVE' | 'VIEW';
  key: string;
  parent: string;
  labels: Labels;
  remote?: RemoteLayer | null;
}

export interface CommitRequest {
  key: string;
  name: string;
  labels: Labels;
  usage: Usage;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('VIEW','ACTIVE','COMMITTED')),
  parent_id INTEGER REFERENCES snapshots(id),
  labels TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  size INTEGER,
  inodes INTEGER,
  remote TEXT,
  UNIQUE (namespace, key)
);
CREATE INDEX IF NOT EXISTS snapshots_by_parent ON snapshots(parent_id);
`;

interface Row {
  id: number;
  namespace: string;
  key: string;
  kind: Kind;
  parent_id: number | null;
  parent_key: string | null;
  labels: string;
  created_ms: number;
  updated_ms: number;
  size: number | null;
  inodes: number | null;
  remote: string | null;
}

const SELECT = `SELECT s.*, p.key AS parent_key FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id`;

const FILTER_KIND: Readonly<Record<Kind, string>> = { VIEW: 'view', ACTIVE: 'active', COMMITTED: 'committed' };

export function describeKey(ns: Scope, key: string): string {
  return ns === '' ? `snapshot ${JSON.stringify(key)}` : `snapshot ${JSON.stringify(key)} in namespace ${JSON.stringify(ns)}`;
}

function checkKey(key: string, what: string): void {
  if (key === '') throw invalidArgument(`${what} must not be empty`);
  if (key.includes('\0')) throw invalidArgument(`${what} ${JSON.stringify(key)} contains a NUL byte`);
  if (Buffer.byteLength(key) > 4096) throw invalidArgument(`${what} is ${Buffer.byteLength(key)} bytes; at most 4096 allowed`);
}

function parseJson<T>(text: string | null, what: string): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw internal(`${what}: stored JSON is corrupt`, err);
  }
}

function infoOf(r: Row): SnapshotInfo {
  return {
    name: r.key,
    parent: r.parent_key ?? '',
    kind: r.kind,
    labels: parseJson<Labels>(r.labels, `labels of snapshot ${r.id}`) ?? {},
    createdAt: new Date(r.created_ms),
    updatedAt: new Date(r.updated_ms),
  };
}

function infoAdaptor(info: SnapshotInfo): FieldAdaptor {
  return (path) => {
    const [head, ...rest] = path;
    switch (head) {
      // As containerd's snapshot adaptor: name and parent are always present, so `parent==""`
      // matches a root snapshot (containerd's remote-snapshot lookup relies on it).
      case 'name': return { value: info.name, present: true };
      case 'parent': return { value: info.parent, present: true };
      case 'kind': return { value: FILTER_KIND[info.kind], present: true };
      case 'labels': {
        const k = rest.join('.');
        return { value: info.labels[k] ?? '', present: rest.length > 0 && k in info.labels };
      }
      default: return { value: '', present: false };
    }
  };
}

export class SnapshotStore {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private findRow(ns: Scope, key: string): Row | undefined {
    return this.db.prepare<[string, string], Row>(`${SELECT} WHERE s.namespace = ? AND s.key = ?`).get(ns, key);
  }

  private row(ns: Scope, key: string): Row {
    const r = this.findRow(ns, key);
    if (!r) throw notFound(`${describeKey(ns, key)} does not exist`);
    return r;
  }

  private rowById(id: number): Row {
    const r = this.db.prepare<[number], Row>(`${SELECT} WHERE s.id = ?`).get(id);
    if (!r) throw internal(`snapshot id ${id} vanished from the metadata db`);
    return r;
  }

  private parentIds(r: Row): number[] {
    const out: number[] = [];
    const step = this.db.prepare<[number], { parent_id: number | null }>('SELECT parent_id FROM snapshots WHERE id = ?');
    for (let id = r.parent_id; id !== null; id = step.get(id)?.parent_id ?? null) {
      if (out.includes(id)) throw internal(`snapshot ${r.id}: parent chain loops at id ${id}`);
      out.push(id);
    }
    return out;
  }

  private snapshot(r: Row): Snapshot {
    return {
      id: r.id,
      namespace: r.namespace,
      info: infoOf(r),
      parentIds: this.parentIds(r),
      usage: r.size === null || r.inodes === null ? null : { size: r.size, inodes: r.inodes },
      remote: parseJson<RemoteLayer>(r.remote, `remote data of snapshot ${r.id}`),
    };
  }

  create(ns: Scope, req: CreateRequest): Snapshot {
    const what = describeKey(ns, req.key);
    checkKey(req.key, 'snapshot key');
    validateLabels(req.labels, what);
    return this.db.transaction((): Snapshot => {
      let parentId: number | null = null;
      if (req.parent !== '') {
        const p = this.findRow(ns, req.parent);
        if (!p) throw notFound(`parent ${JSON.stringify(req.parent)} of ${what} does not exist`);
        if (p.kind !== 'COMMITTED') throw invalidArgument(`parent ${JSON.stringify(req.parent)} of ${what} is not committed (it is ${p.kind.toLowerCase()})`);
        parentId = p.id;
      }
      if (this.findRow(ns, req.key)) throw alreadyExists(`${what} already exists`);
      const now = Date.now();
      const res = this.db.prepare(`INSERT INTO snapshots (namespace, key, kind, parent_id, labels, created_ms, updated_ms, remote)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(ns, req.key, req.kind, parentId, JSON.stringify(req.labels), now, now,
        req.remote ? JSON.stringify(req.remote) : null);
      return this.snapshot(this.rowById(Number(res.lastInsertRowid)));
    })();
  }

  get(ns: Scope, key: string): Snapshot {
    checkKey(key, 'snapshot key');
    return this.snapshot(this.row(ns, key));
  }

  /** Turns the active snapshot `key` into the committed snapshot `name`, keeping its id (and directory). */
  commit(ns: Scope, req: CommitRequest): Snapshot {
    checkKey(req.key, 'snapshot key');
    checkKey(req.name, 'commit name');
    validateLabels(req.labels, describeKey(ns, req.name));
    return this.db.transaction((): Snapshot => {
      const r = this.row(ns, req.key);
      if (r.kind !== 'ACTIVE') throw failedPrecondition(`${describeKey(ns, req.key)} is a ${r.kind.toLowerCase()} snapshot; only active snapshots can be committed`);
      if (this.findRow(ns, req.name)) throw alreadyExists(`cannot commit ${describeKey(ns, req.key)}: ${describeKey(ns, req.name)} already exists`);
      const now = Date.now();
      this.db.prepare(`UPDATE snapshots SET key = ?, kind = 'COMMITTED', labels = ?, created_ms = ?, updated_ms = ?, size = ?, inodes = ?
        WHERE id = ?`).run(req.name, JSON.stringify(req.labels), now, now, req.usage.size, req.usage.inodes, r.id);
      return this.snapshot(this.rowById(r.id));
    })();
  }

  /** Deletes the record and returns what it was; the caller removes the directory. */
  remove(ns: Scope, key: string): Snapshot {
    checkKey(key, 'snapshot key');
    return this.db.transaction((): Snapshot => {
      const r = this.row(ns, key);
      const children = this.db.prepare<[number], { key: string }>('SELECT key FROM snapshots WHERE parent_id = ? LIMIT 3').all(r.id);
      if (children.length > 0) {
        throw failedPrecondition(`cannot remove ${describeKey(ns, key)}: it has children (${children.map((c) => JSON.stringify(c.key)).join(', ')})`);
      }
      const snap = this.snapshot(r);
      this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(r.id);
      return snap;
    })();
  }

  /**
   * Updates labels as containerd does: mask paths `labels` (replace all) and `labels.<key>` (set
   * that key, or delete it when `info.labels` lacks it); an empty mask replaces all labels.
   */
  update(ns: Scope, name: string, labels: Labels, paths: readonly string[]): SnapshotInfo {
    checkKey(name, 'snapshot name');
    const what = describeKey(ns, name);
    for (const p of paths) {
      if (p !== 'labels' && !(p.startsWith('labels.') && p.length > 'labels.'.length)) {
        throw invalidArgument(`cannot update field ${JSON.stringify(p)} of ${what}: only labels can be updated`);
      }
    }
    return this.db.transaction((): SnapshotInfo => {
      const r = this.row(ns, name);
      const next = paths.length === 0 ? { ...labels } : applyMask(infoOf(r).labels, labels, paths);
      validateLabels(next, what);
      this.db.prepare('UPDATE snapshots SET labels = ?, updated_ms = ? WHERE id = ?').run(JSON.stringify(next), Date.now(), r.id);
      return infoOf(this.rowById(r.id));
    })();
  }

  list(ns: Scope, filters: readonly string[] = []): SnapshotInfo[] {
    const match = parseFilters(filters);
    const rows = this.db.prepare<[string], Row>(`${SELECT} WHERE s.namespace = ? ORDER BY s.id`).all(ns);
    return rows.map(infoOf).filter((info) => match(infoAdaptor(info)));
  }

  /** Ids of every snapshot in the db (all namespaces). */
  ids(): Set<number> {
    return new Set(this.db.prepare<[], { id: number }>('SELECT id FROM snapshots').all().map((r) => r.id));
  }

  setRemote(id: number, remote: RemoteLayer | null): void {
    const res = this.db.prepare('UPDATE snapshots SET remote = ? WHERE id = ?').run(remote ? JSON.stringify(remote) : null, id);
    if (res.changes === 0) throw notFound(`snapshot id ${id} does not exist`);
  }

  /** Committed snapshots backed by a remote layer, oldest first (the order to mount them on restart). */
  remoteCommitted(): Snapshot[] {
    const rows = this.db.prepare<[], Row>(`${SELECT} WHERE s.kind = 'COMMITTED' AND s.remote IS NOT NULL ORDER BY s.id`).all();
    return rows.map((r) => this.snapshot(r));
  }
}

function applyMask(current: Labels, given: Labels, paths: readonly string[]): Labels {
  let next: Labels = { ...current };
  for (const p of paths) {
    if (p === 'labels') {
      next = { ...given };
      continue;
    }
    const k = p.slice('labels.'.length);
    if (Object.hasOwn(given, k) && given[k] !== '') next[k] = given[k];
    else delete next[k];
  }
  return next;
}
