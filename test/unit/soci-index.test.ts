import t from 'tap';
import { buildSociIndex, parseSociIndex, EMPTY_CONFIG_DIGEST, ARTIFACT_TYPE_SOCI_V1, ARTIFACT_TYPE_SOCI_V2 } from '../../ztoc/soci-index.js';
import { buildSociEnabledIndex, rewriteManifestForSoci } from '../../ztoc/soci-image-index.js';
import { sha256Digest } from '../../ztoc/digest.js';
import { goJson } from '../../ztoc/go-json.js';
import type { Manifest } from '../../ztoc/oci.js';

const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 1234, annotations: { x: 'y' } };
const ztoc = (n: number, xattrs = false) => ({
  ztocDigest: 'sha256:' + String(n).repeat(64).slice(0, 64),
  ztocSize: 1000 + n,
  layerDigest: 'sha256:' + String(n + 1).repeat(64).slice(0, 64),
  layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  spanSize: 4194304,
  disableXattrs: !xattrs,
});

t.test('empty config digest is sha256 of {}', async (t) => {
  t.equal(sha256Digest(new TextEncoder().encode('{}')), EMPTY_CONFIG_DIGEST);
});

t.test('v1 index manifest: exact JSON in Go field order with subject', async (t) => {
  const { bytes, digest, manifest } = buildSociIndex({ version: 'v1', ztocs: [ztoc(1), ztoc(2, true)], subject, buildTool: 'tool <1>' });
  const text = new TextDecoder().decode(bytes);
  t.equal(digest, sha256Digest(bytes));
  t.equal(manifest.artifactType, ARTIFACT_TYPE_SOCI_V1);
  const expected =
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.amazon.soci.index.v1+json",' +
    `"config":{"mediaType":"application/vnd.amazon.soci.index.v1+json","digest":"${EMPTY_CONFIG_DIGEST}","size":2},` +
    `"layers":[{"mediaType":"application/octet-stream","digest":"${ztoc(1).ztocDigest}","size":1001,"annotations":{"com.amazon.soci.disable-xattrs":"true","com.amazon.soci.image-layer-digest":"${ztoc(1).layerDigest}","com.amazon.soci.image-layer-mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","com.amazon.soci.span-size":"4194304"}},` +
    `{"mediaType":"application/octet-stream","digest":"${ztoc(2).ztocDigest}","size":1002,"annotations":{"com.amazon.soci.image-layer-digest":"${ztoc(2).layerDigest}","com.amazon.soci.image-layer-mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","com.amazon.soci.span-size":"4194304"}}],` +
    `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${subject.digest}","size":1234},` +
    '"annotations":{"com.amazon.soci.build-tool-identifier":"tool \\u003c1\\u003e"}}';
  t.equal(text, expected);
  const parsed = parseSociIndex(bytes);
  t.equal(parsed.version, 'v1');
  t.same(parsed.ztocs, [ztoc(1), ztoc(2, true)]);
});

t.test('v2 index manifest has no subject', async (t) => {
  const { bytes } = buildSociIndex({ version: 'v2', ztocs: [ztoc(3)], subject, buildTool: 't' });
  const m = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  t.equal(m.artifactType, ARTIFACT_TYPE_SOCI_V2);
  t.equal(m.config.mediaType, ARTIFACT_TYPE_SOCI_V2);
  t.equal(m.subject, undefined);
  t.equal(parseSociIndex(bytes).version, 'v2');
});

t.test('an index without ztocs is refused', async (t) => {
  t.throws(() => buildSociIndex({ version: 'v1', ztocs: [], subject, buildTool: 't' }), /no ztocs created/);
});

t.test('parseSociIndex rejects what is not a SOCI index, naming the cause', async (t) => {
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  t.throws(() => parseSociIndex(new TextEncoder().encode('{nope')), /not valid JSON/);
  t.throws(() => parseSociIndex(enc({ schemaVersion: 2, artifactType: 'x', layers: [] })), /is not a SOCI index/);
  t.throws(() => parseSociIndex(enc({ schemaVersion: 1 })), /schemaVersion/);
  t.throws(
    () => parseSociIndex(enc({ schemaVersion: 2, artifactType: ARTIFACT_TYPE_SOCI_V1, layers: [{ mediaType: 'application/octet-stream', digest: 'sha256:zz', size: 1 }] })),
    /layer 0 is not a valid descriptor/,
  );
  t.throws(
    () => parseSociIndex(enc({ schemaVersion: 2, artifactType: ARTIFACT_TYPE_SOCI_V1, layers: [{ mediaType: 'application/octet-stream', digest: ztoc(1).ztocDigest, size: 1 }] })),
    /lacks a valid com.amazon.soci.image-layer-digest/,
  );
});

t.test('SOCI-enabled image index (v2): rewritten manifest and index entries', async (t) => {
  const original: Manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: 'sha256:' + 'c'.repeat(64), size: 10 },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: 'sha256:' + 'd'.repeat(64), size: 20 }],
  };
  const idx = buildSociIndex({ version: 'v2', ztocs: [ztoc(4)], subject, buildTool: 't' });
  const rewritten = rewriteManifestForSoci(original, idx.digest);
  const m = JSON.parse(new TextDecoder().decode(rewritten.bytes)) as Manifest;
  t.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.equal(m.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  t.equal(m.config.digest, original.config.digest, 'config bytes untouched');
  t.same(m.layers, original.layers, 'layers untouched');
  t.same(m.annotations, { 'com.amazon.soci.index-digest': idx.digest });
  t.equal(rewritten.digest, sha256Digest(rewritten.bytes));
  const platform = { architecture: 'amd64', os: 'linux' };
  const ii = buildSociEnabledIndex(
    [{ manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: rewritten.digest, size: rewritten.bytes.length }, sociIndex: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: idx.digest, size: idx.bytes.length }, platform }],
    [],
  );
  const parsed = JSON.parse(new TextDecoder().decode(ii.bytes));
  t.equal(parsed.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.equal(parsed.manifests.length, 2);
  t.same(parsed.manifests[0], { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: rewritten.digest, size: rewritten.bytes.length, platform });
  t.same(parsed.manifests[1], {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: idx.digest,
    size: idx.bytes.length,
    annotations: { 'com.amazon.soci.image-manifest-digest': rewritten.digest },
    platform,
    artifactType: ARTIFACT_TYPE_SOCI_V2,
  });
});

t.test('goJson escapes as Go does', async (t) => {
  t.equal(goJson({ a: '<&>\u2028' }), '{"a":"\\u003c\\u0026\\u003e\\u2028"}');
});
