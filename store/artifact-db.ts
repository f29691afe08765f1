import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SociVersion } from '../ztoc/soci-index.js';

/** What the local store knows about SOCI indexes and zTOCs (upstream keeps the same facts in artifacts.db). */

export interface IndexRecord {
  digest: string;
  size: number;
  imageRef: string;
  manifestDigest: string;
  platform: string;
  version: SociVersion;
  created: string;
}

export interface ZtocRecord {
  digest: string;
  layerDigest: string;
  spanSize: number;
  size: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS indexes (
  digest TEXT NOT NULL PRIMARY KEY,
  size INTEGER NOT NULL,
  image_ref TEXT NOT NULL,
  manifest_digest TEXT NOT NULL,
  platform TEXT NOT NULL,
  version TEXT NOT NULL CHECK (version IN ('v1','v2')),
  created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS indexes_by_manifest ON indexes(manifest_digest);
CREATE INDEX IF NOT EXISTS indexes_by_ref ON indexes(image_ref);
CREATE TABLE IF NOT EXISTS ztocs (
  digest TEXT NOT NULL,
  layer_digest TEXT NOT NULL,
  span_size INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (digest, layer_digest)
);
CREATE INDEX IF NOT EXISTS ztocs_by_layer ON ztocs(layer_digest);
`;

interface IndexRow {
  digest: string;
  size: number;
  image_ref: string;
  manifest_digest: string;
  platform: string;
  version: SociVersion;
  created: string;
}

interface ZtocRow {
  digest: string;
  layer_digest: string;
  span_size: number;
  size: number;
}

const toIndex = (r: IndexRow): IndexRecord => ({
  digest: r.digest,
  size: r.size,
  imageRef: r.image_ref,
  manifestDigest: r.manifest_digest,
  platform: r.platform,
  version: r.version,
  created: r.created,
});

const toZtoc = (r: ZtocRow): ZtocRecord => ({
  digest: r.digest,
  layerDigest: r.layer_digest,
  spanSize: r.span_size,
  size: r.size,
});

export class ArtifactDb {
  private readonly db: Database.Database;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL + a busy timeout let two CLI runs (or CLI and daemon) write without "database is locked".
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  /** Records an index and its zTOCs in one transaction. */
  addIndex(index: IndexRecord, ztocs: ZtocRecord[]): void {
    const putIndex = this.db.prepare(
      `INSERT OR REPLACE INTO indexes (digest, size, image_ref, manifest_digest, platform, version, created)
       VALUES (@digest, @size, @imageRef, @manifestDigest, @platform, @version, @created)`,
    );
    const putZtoc = this.db.prepare(
      `INSERT OR REPLACE INTO ztocs (digest, layer_digest, span_size, size) VALUES (@digest, @layerDigest, @spanSize, @size)`,
    );
    this.db.transaction(() => {
      putIndex.run(index);
      for (const z of ztocs) putZtoc.run(z);
    }).immediate();
  }

  listIndexes(filter: { imageRef?: string; manifestDigest?: string; platform?: string } = {}): IndexRecord[] {
    const where: string[] = [];
    const args: Record<string, string> = {};
    if (filter.imageRef) { where.push('image_ref = @imageRef'); args.imageRef = filter.imageRef; }
    if (filter.manifestDigest) { where.push('manifest_digest = @manifestDigest'); args.manifestDigest = filter.manifestDigest; }
    if (filter.platform) { where.push('platform = @platform'); args.platform = filter.platform; }
    const sql = `SELECT * FROM indexes ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created DESC, digest`;
    return (this.db.prepare(sql).all(args) as IndexRow[]).map(toIndex);
  }

  getIndex(digest: string): IndexRecord | undefined {
    const r = this.db.prepare('SELECT * FROM indexes WHERE digest = ?').get(digest) as IndexRow | undefined;
    return r && toIndex(r);
  }

  removeIndex(digest: string): boolean {
    return this.db.prepare('DELETE FROM indexes WHERE digest = ?').run(digest).changes > 0;
  }

  listZtocs(filter: { digest?: string; layerDigest?: string } = {}): ZtocRecord[] {
    const where: string[] = [];
    const args: Record<string, string> = {};
    if (filter.digest) { where.push('digest = @digest'); args.digest = filter.digest; }
    if (filter.layerDigest) { where.push('layer_digest = @layerDigest'); args.layerDigest = filter.layerDigest; }
    const sql = `SELECT * FROM ztocs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY layer_digest, digest`;
    return (this.db.prepare(sql).all(args) as ZtocRow[]).map(toZtoc);
  }

  removeZtoc(digest: string): void {
    this.db.prepare('DELETE FROM ztocs WHERE digest = ?').run(digest);
  }

  /** Replaces everything (rebuild-db) in one transaction. */
  replaceAll(indexes: IndexRecord[], ztocs: ZtocRecord[]): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM indexes; DELETE FROM ztocs;');
      const pi = this.db.prepare(
        `INSERT OR REPLACE INTO indexes (digest, size, image_ref, manifest_digest, platform, version, created)
         VALUES (@digest, @size, @imageRef, @manifestDigest, @platform, @version, @created)`,
      );
      const pz = this.db.prepare(
        `INSERT OR REPLACE INTO ztocs (digest, layer_digest, span_size, size) VALUES (@digest, @layerDigest, @spanSize, @size)`,
      );
      for (const i of indexes) pi.run(i);
      for (const z of ztocs) pz.run(z);
    }).immediate();
  }
}
