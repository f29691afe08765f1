// Child process for the store race test: writes a shared blob and its own index records.
import { LocalStore } from '../../store/local-store.js';

const [root, id] = process.argv.slice(2);
const store = new LocalStore(root);
const shared = Buffer.alloc(256 * 1024, 7);
for (let i = 0; i < 20; i++) {
  await store.content.put(shared);
  const own = await store.content.put(Buffer.from(`blob ${id} ${i}`));
  store.db.addIndex(
    { digest: own, size: 1, imageRef: `img${id}`, manifestDigest: own, platform: 'linux/amd64', version: 'v1', created: new Date().toISOString() },
    [{ digest: own, layerDigest: own, spanSize: 1, size: 1 }],
  );
}
store.close();
