import { join } from 'node:path';
import { ArtifactDb } from './artifact-db.js';
import { ContentStore } from './content-store.js';

export const ARTIFACT_DB_NAME = 'soci-artifacts.sqlite';

/** The local SOCI artifact store: blobs plus the db that indexes them. */
export class LocalStore {
  readonly content: ContentStore;
  readonly db: ArtifactDb;

  constructor(readonly root: string) {
    this.content = new ContentStore(root);
    this.db = new ArtifactDb(join(root, ARTIFACT_DB_NAME));
  }

  close(): void {
    this.db.close();
  }
}
