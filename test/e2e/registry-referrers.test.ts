import t from 'tap';
import { randomBytes } from 'node:crypto';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { sha256Digest } from '../../ztoc/digest.js';
import { MEDIA_TYPE_OCI_MANIFEST, type Descriptor } from '../../ztoc/oci.js';
import { startRegistry } from '../helpers/registry.js';
import { startReferrersServer } from '../helpers/referrers-server.js';

const desc = (data: Buffer, mediaType = 'application/octet-stream'): Descriptor => ({ mediaType, digest: sha256Digest(data), size: data.length });
const SOCI_V1 = 'application/vnd.amazon.soci.index.v1+json';

t.test('OCI 1.1 referrers API with the artifactType filter', async (t) => {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const rs = await startReferrersServer(reg.url);
  t.teardown(() => rs.stop());
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const ref = parseReference(`${rs.host}/refs/app:v1`);
  const config = Buffer.from('{}');
  await client.pushBlob(ref, desc(config), config);
  const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: desc(config, 'application/vnd.oci.image.config.v1+json'), layers: [] }));
  await client.pushManifest(ref, 'v1', image, MEDIA_TYPE_OCI_MANIFEST);
  const subject = desc(image, MEDIA_TYPE_OCI_MANIFEST);
  t.same(await client.referrers(ref, subject.digest), [], 'API answers an empty list');

  const pushed: Descriptor[] = [];
  for (const [i, at] of [SOCI_V1, 'application/vnd.example.sbom', SOCI_V1].entries()) {
    const z = randomBytes(64 + i);
    await client.pushBlob(ref, desc(z), z);
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, artifactType: at, config: desc(config, 'application/vnd.oci.empty.v1+json'), layers: [desc(z)], subject, annotations: { i: String(i) } }));
    const res = await client.pushManifest(ref, sha256Digest(m), m, MEDIA_TYPE_OCI_MANIFEST);
    t.equal(res.ociSubject, true, 'OCI-Subject reported');
    pushed.push({ ...desc(m, MEDIA_TYPE_OCI_MANIFEST), artifactType: at, annotations: { i: String(i) } });
  }
  t.same(await client.referrers(ref, subject.digest), pushed);
  t.same((await client.referrers(ref, subject.digest, SOCI_V1)).map((d) => d.digest), [pushed[0].digest, pushed[2].digest]);
  t.same(await client.referrers(ref, subject.digest, 'application/none'), []);
  const q = rs.log().filter((e) => e.path.includes('/referrers/'));
  t.ok(q.some((e) => e.path.endsWith(`?artifactType=${encodeURIComponent(SOCI_V1)}`)), 'filter sent to the server');
  t.equal((await reg.accessLog()).filter((e) => e.path.includes('sha256-')).length, 0, 'no fallback tag used');
});
