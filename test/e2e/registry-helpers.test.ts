import t, { type Test } from 'tap';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetch } from 'undici';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { pushBlob, pushManifest } from '../helpers/registry-push.js';
import { sha256Digest } from '../helpers/images.js';
import { tempDirFor } from '../helpers/tmp.js';
import { execCapture } from '../helpers/exec.js';
import { issueClientCert, issueServerCert, makeCa } from '../helpers/tls-ca.js';
import { libtrustKeyId, startTokenServer, tokenAuthRegistryConfig, type TokenServer } from '../helpers/token-server.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { OCI_INDEX_MEDIA_TYPE, startReferrersServer } from '../helpers/referrers-server.js';

const curl = (args: string[]): ReturnType<typeof execCapture> => execCapture('curl', ['-sS', ...args], { timeoutMs: 20000 });
const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

t.test('tls-ca: registry over HTTPS with a test CA, and mTLS', async (t) => {
  const dir = await tempDirFor(t, 'soci-tls-');
  const ca = await makeCa(dir);
  const server = await issueServerCert(ca, dir, ['127.0.0.1', 'localhost', '::1']);
  const x = new X509Certificate(server.cert);
  t.equal(x.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1');
  t.ok(x.verify(new X509Certificate(ca.cert).publicKey), 'server cert signed by the CA');
  t.ok(x.checkIP('127.0.0.1') && x.checkHost('localhost'), 'names match');

  const reg = await startRegistry({ tls: { cert: server.cert, key: server.key } });
  t.teardown(() => reg.stop());
  t.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ok = await curl(['--cacert', ca.certPath, `${reg.url}/v2/`]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, '{}');
  const untrusted = await curl([`${reg.url}/v2/`]);
  t.equal(untrusted.code, 60, 'curl refuses the cert without the CA');

  // An HTTPS fault proxy (e.g. a TLS mirror) in front of a plain registry.
  const plain = await startRegistry();
  t.teardown(() => plain.stop());
  const tlsProxy = await startFaultProxy(plain.url, { tls: { cert: server.cert, key: server.key } });
  t.teardown(() => tlsProxy.stop());
  t.match(tlsProxy.url, /^https:/);
  const viaProxy = await curl(['--cacert', ca.certPath, `${tlsProxy.url}/v2/`]);
  t.equal(viaProxy.stdout, '{}', viaProxy.stderr);
  t.same(tlsProxy.log().map((e) => [e.path, e.status]), [['/v2/', 200]]);

  const client = await issueClientCert(ca, dir, 'soci-client');
  t.equal(new X509Certificate(client.cert).subject, 'CN=soci-client');
  const mreg = await startRegistry({ tls: { cert: server.cert, key: server.key, clientCa: ca.cert } });
  t.teardown(() => mreg.stop());
  const noCert = await curl(['--cacert', ca.certPath, `${mreg.url}/v2/`]);
  t.not(noCert.code, 0, 'mTLS registry refuses a client without certificate');
  const withCert = await curl(['--cacert', ca.certPath, '--cert', client.certPath, '--key', client.keyPath, `${mreg.url}/v2/`]);
  t.equal(withCert.code, 0, withCert.stderr);
  t.equal(withCert.stdout, '{}');
});

interface TokenEnv {
  ts: TokenServer;
  reg: Registry;
}

async function tokenEnv(t: Test, opts: Parameters<typeof startTokenServer>[0]): Promise<TokenEnv> {
  const ts = await startTokenServer(opts);
  t.teardown(() => ts.stop());
  const reg = await startRegistry({ tokenAuth: tokenAuthRegistryConfig(ts) });
  t.teardown(() => reg.stop());
  return { ts, reg };
}

async function curlToken(ts: TokenServer, scope: string, user?: string): Promise<{ code: number; status: number; body: Record<string, unknown> }> {
  const url = `${ts.realm}?service=${ts.service}&scope=${encodeURIComponent(scope)}`;
  const res = await curl(['-w', '\n%{http_code}', ...(user ? ['-u', user] : []), url]);
  const lines = res.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { code: res.code, status, body: JSON.parse(lines.join('\n') || '{}') as Record<string, unknown> };
}

function jwtParts(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), claims: JSON.parse(Buffer.from(c, 'base64url').toString()) };
}

t.test('token-server: registry token auth end to end', async (t) => {
  const { ts, reg } = await tokenEnv(t, { users: { alice: 'wonder' }, issuer: 'test-issuer', service: 'test-registry' });
  const challenge = await fetch(`${reg.url}/v2/`);
  t.equal(challenge.status, 401);
  t.equal(challenge.headers.get('www-authenticate'), `Bearer realm="${ts.realm}",service="test-registry"`);

  const scope = 'repository:team/app:pull,push';
  const got = await curlToken(ts, scope, 'alice:wonder');
  t.equal(got.status, 200);
  const token = String(got.body.token);
  t.equal(got.body.access_token, token);
  t.equal(got.body.expires_in, 300);
  t.match(String(got.body.issued_at), /^\d{4}-\d\d-\d\dT/);
  const { header, claims } = jwtParts(token);
  t.equal(header.alg, 'ES256');
  t.equal(header.kid, ts.keyId);
  t.match(ts.keyId, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/, 'libtrust fingerprint format');
  t.same(claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  t.equal(claims.iss, 'test-issuer');
  t.equal(claims.aud, 'test-registry');
  t.equal(claims.sub, 'alice');
  t.equal(Number(claims.exp) - Number(claims.iat), 300);

  const auth = { authorization: `Bearer ${token}` };
  t.equal((await fetch(`${reg.url}/v2/`, { headers: auth })).status, 200);
  const blob = randomBytes(5000);
  const digest = await pushBlob(reg.url, 'team/app', blob, { headers: auth });
  const pulled = await curl(['-f', '-H', `Authorization: Bearer ${token}`, '-o', '-', `${reg.url}/v2/team/app/blobs/${digest}`]);
  t.equal(pulled.code, 0, pulled.stderr);
  t.equal(sha256Digest(pulled.stdoutBuffer), digest, 'pulled blob byte-identical');
  const noToken = await fetch(`${reg.url}/v2/team/app/blobs/${digest}`);
  t.equal(noToken.status, 401);
  t.equal(noToken.headers.get('www-authenticate'), `Bearer realm="${ts.realm}",service="test-registry",scope="repository:team/app:pull"`);

  const wrong = await curlToken(ts, scope, 'alice:nope');
  t.equal(wrong.status, 401, 'wrong password: 401 from the token server');
  t.equal(ts.tokenCount(), 1, 'only the good request issued a token');
  t.same(ts.requests().map((r) => [r.user, r.status, r.scopes]), [['alice', 200, [scope]], [undefined, 401, [scope]]]);

  const expired = ts.mint('alice', [{ type: 'repository', name: 'team/app', actions: ['pull'] }], -120);
  const refused = await fetch(`${reg.url}/v2/team/app/blobs/${digest}`, { headers: { authorization: `Bearer ${expired}` } });
  t.equal(refused.status, 401, 'expired token refused');
  await refused.text();

  const anon = await curlToken(ts, scope);
  t.equal(anon.status, 200);
  const anonToken = String(anon.body.token);
  t.same(jwtParts(anonToken).claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }], 'anonymous: pull only');
  const anonPull = await fetch(`${reg.url}/v2/team/app/blobs/${digest}`, { headers: { authorization: `Bearer ${anonToken}` } });
  t.equal(anonPull.status, 200);
  t.equal(sha256Digest(Buffer.from(await anonPull.arrayBuffer())), digest);
  const anonPush = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${anonToken}` } });
  t.equal(anonPush.status, 401, 'anonymous push refused');
  t.match(anonPush.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
  await anonPush.text();

  const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wonder', service: 'test-registry', scope, client_id: 'soci' });
  const posted = await fetch(ts.realm, { method: 'POST', body: form });
  t.equal(posted.status, 200);
  const postBody = (await posted.json()) as { access_token: string; scope: string };
  t.equal(postBody.scope, scope);
  t.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${postBody.access_token}` } })).status, 200, 'OAuth2 POST token accepted');
});

t.test('token-server: x5c-only and kid-only headers both verify; deny and ttl options', async (t) => {
  for (const keyRef of ['x5c', 'kid'] as const) {
    const ts = await startTokenServer({ users: { bob: 'pw' }, keyRef, anonymous: 'deny' });
    const reg = await startRegistry({ tokenAuth: tokenAuthRegistryConfig(ts) });
    try {
      const { header } = jwtParts(ts.mint('bob', []));
      t.equal('x5c' in header, keyRef === 'x5c');
      t.equal('kid' in header, keyRef === 'kid');
      const res = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${ts.mint('bob', [])}` } });
      t.equal(res.status, 200, `${keyRef} token accepted`);
      t.equal((await fetch(ts.realm)).status, 401, 'anonymous denied');
      ts.setTtl(-120, 60);
      const r = (await (await fetch(ts.realm, { headers: { authorization: basic('bob', 'pw') } })).json()) as { token: string; expires_in: number };
      t.equal(r.expires_in, 60, 'advertised lifetime differs from the claims');
      t.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${r.token}` } })).status, 401, 'stale token refused');
    } finally {
      await reg.stop();
      await ts.stop();
    }
  }
  t.equal(libtrustKeyId(Buffer.from('')), '4OYM:IQUY:7QOB:JGX3:6TEJ:S35Z:EQT2:4QPE:MSNZ:GTFE:SWMR:W6CS', 'libtrust id of sha256("") as coreutils base32 encodes it');
});

async function faultEnv(t: Test): Promise<{ reg: Registry; proxy: FaultProxy; blob: Buffer; blobUrl: string }> {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const blob = randomBytes(256 * 1024);
  const digest = await pushBlob(reg.url, 'fault/x', blob);
  const proxy = await startFaultProxy(reg.url);
  t.teardown(() => proxy.stop());
  return { reg, proxy, blob, blobUrl: `${proxy.url}/v2/fault/x/blobs/${digest}` };
}

const BLOB_PATH = /\/blobs\/sha256:/;

t.test('fault-proxy: pass-through, status, delay, log and runtime rules', async (t) => {
  const { reg, proxy, blob, blobUrl } = await faultEnv(t);
  const whole = await fetch(blobUrl);
  t.equal(whole.status, 200);
  t.same(Buffer.from(await whole.arrayBuffer()), blob, 'pass-through is byte-identical');
  const ranged = await fetch(blobUrl, { headers: { range: 'bytes=100-4195' } });
  t.equal(ranged.status, 206);
  t.same(Buffer.from(await ranged.arrayBuffer()), blob.subarray(100, 4196));
  t.same(proxy.log().map((e) => [e.method, e.status, e.bytes, e.range, e.action, e.outcome]), [
    ['GET', 200, blob.length, undefined, 'pass', 'complete'], ['GET', 206, 4096, 'bytes=100-4195', 'pass', 'complete'],
  ]);
  t.equal(proxy.bytesServed(), blob.length + 4096);

  // Uploads through the proxy: registry Location headers point back at the proxy.
  const small = Buffer.from('through the proxy');
  const d = await pushBlob(proxy.url, 'fault/y', small);
  t.ok(proxy.log().some((e) => e.method === 'PUT' && e.path.startsWith('/v2/fault/y/blobs/uploads/') && e.status === 201), 'PUT went via the proxy');
  t.same(Buffer.from(await (await fetch(`${reg.url}/v2/fault/y/blobs/${d}`)).arrayBuffer()), small);

  proxy.clearLog();
  proxy.setRules([
    { method: 'GET', path: BLOB_PATH, times: 2, action: { kind: 'status', status: 500 } },
    { method: 'GET', path: BLOB_PATH, times: 1, action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } },
  ]);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await fetch(blobUrl);
    statuses.push(r.status);
    if (r.status === 429) t.equal(r.headers.get('retry-after'), '1');
    const body = Buffer.from(await r.arrayBuffer());
    if (r.status === 200) t.same(body, blob);
  }
  t.same(statuses, [500, 500, 429, 200], 'two 500s, one 429, then success');
  t.same(proxy.ruleHits(), [4, 2], 'rule counters');
  t.equal((await reg.accessLog()).filter((e) => e.path.endsWith(blobUrl.slice(blobUrl.indexOf('/v2/')))).length, 3, 'injected statuses never reached the registry');

  proxy.setRules([{ path: BLOB_PATH, skip: 1, times: 1, action: { kind: 'delay', ms: 400 } }]);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const start = Date.now();
    const r = await fetch(blobUrl, { headers: { range: 'bytes=0-9' } });
    t.same(Buffer.from(await r.arrayBuffer()), blob.subarray(0, 10));
    times.push(Date.now() - start);
  }
  t.ok(times[1] >= 390 && times[0] < 300 && times[2] < 300, `only the second request delayed: ${times.join(',')} ms`);
});

t.test('fault-proxy: reset, truncate, corrupt', async (t) => {
  const { proxy, blob, blobUrl } = await faultEnv(t);
  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'reset-mid-body', afterBytes: 10000 } }]);
  const reset = await curl(['-o', '-', blobUrl]);
  t.equal(reset.code, 56, `curl: receive failure (${reset.stderr.trim()})`);
  t.ok(reset.stdoutBuffer.length <= 10000, `at most 10000 bytes got through: ${reset.stdoutBuffer.length}`);
  t.same(reset.stdoutBuffer, blob.subarray(0, reset.stdoutBuffer.length), 'the bytes before the reset are right');
  const again = await fetch(blobUrl);
  t.same(Buffer.from(await again.arrayBuffer()), blob, 'rule exhausted: next request passes');

  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'reset-mid-body', afterBytes: 5000 } }]);
  const viaUndici = await fetch(blobUrl);
  t.equal(viaUndici.status, 200);
  await t.rejects(viaUndici.arrayBuffer(), 'undici body read fails on the reset');

  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'truncate' } }]);
  const bodyFile = join(await tempDirFor(t), 'body');
  const trunc = await curl(['-o', bodyFile, '-D', '-', blobUrl]);
  t.equal(trunc.code, 18, 'curl: partial file');
  t.match(trunc.stdout, new RegExp(`content-length: ${blob.length}\r\n`, 'i'), 'full Content-Length announced');
  t.same(await readFile(bodyFile), blob.subarray(0, blob.length / 2), 'exactly half delivered');

  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'corrupt', offset: 70000, count: 3 } }]);
  const bad = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
  t.equal(bad.length, blob.length);
  t.not(sha256Digest(bad), sha256Digest(blob));
  const diff = [...bad.keys()].filter((i) => bad[i] !== blob[i]);
  t.same(diff, [70000, 70001, 70002]);
  t.equal(bad[70000], blob[70000] ^ 0xff);
  const last = proxy.log().map((e) => [e.action, e.outcome, e.bytes]);
  t.same(last, [['reset-mid-body', 'reset', 10000], ['pass', 'complete', blob.length], ['reset-mid-body', 'reset', 5000], ['truncate', 'truncated', blob.length / 2], ['corrupt', 'complete', blob.length]]);
});

t.test('fault-proxy: stalls end in client timeouts, and stop() frees held sockets', async (t) => {
  const { proxy, blob, blobUrl } = await faultEnv(t);
  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'stall' } }]);
  const start = Date.now();
  const silent = await curl(['--max-time', '1', '-o', '/dev/null', blobUrl]);
  t.equal(silent.code, 28, 'curl: timeout with no response');
  t.ok(Date.now() - start < 3000);

  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'stall', afterHeaders: true } }]);
  const headersOnly = await fetch(blobUrl, { signal: AbortSignal.timeout(800) });
  t.equal(headersOnly.status, 200, 'headers arrive');
  t.equal(headersOnly.headers.get('content-length'), String(blob.length));
  await t.rejects(headersOnly.arrayBuffer(), { name: 'TimeoutError' }, 'body never comes');

  proxy.setRules([{ path: BLOB_PATH, times: 1, action: { kind: 'stall', afterBytes: 1000 } }]);
  const partial = await curl(['--max-time', '1', '-o', '-', blobUrl]);
  t.equal(partial.code, 28);
  t.same(partial.stdoutBuffer, blob.subarray(0, 1000), 'stalls after 1000 bytes');
  t.same(proxy.log().map((e) => [e.action, e.outcome]), [['stall', 'stalled'], ['stall', 'stalled'], ['stall', 'stalled']]);

  proxy.setRules([{ path: BLOB_PATH, action: { kind: 'stall' } }]);
  const pending = fetch(blobUrl).then(() => 'answered', () => 'failed');
  await new Promise((r) => setTimeout(r, 200));
  const stopStart = Date.now();
  await proxy.stop();
  t.equal(await pending, 'failed', 'held request fails once the proxy stops');
  t.ok(Date.now() - stopStart < 1000, 'stop does not wait for stalled sockets');
});

const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(Buffer.from('{}')), size: 2 };
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function artifact(subject: { digest: string; size: number }, artifactType: string, layer: { digest: string; size: number }): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MANIFEST, artifactType, config: EMPTY,
    layers: [{ mediaType: 'application/octet-stream', ...layer }],
    subject: { mediaType: MANIFEST, ...subject }, annotations: { 'com.example.kind': artifactType },
  }));
}

t.test('referrers-server: OCI 1.1 referrers API in front of the real registry', async (t) => {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const rs = await startReferrersServer(reg.url);
  t.teardown(() => rs.stop());
  const repo = 'ref/app';
  await pushBlob(rs.url, repo, Buffer.from('{}'));
  const layerData = randomBytes(3000);
  const layer = { digest: await pushBlob(rs.url, repo, layerData), size: layerData.length };
  const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config: EMPTY, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }] }));
  const subject = { digest: await pushManifest(rs.url, repo, 'v1', image, MANIFEST), size: image.length };

  const sociType = 'application/vnd.amazon.soci.index.v1+json';
  const a1 = artifact(subject, sociType, layer);
  const a2 = artifact(subject, 'application/vnd.example.sbom', layer);
  const put1 = await fetch(`${rs.url}/v2/${repo}/manifests/${sha256Digest(a1)}`, { method: 'PUT', body: a1, headers: { 'content-type': MANIFEST } });
  t.equal(put1.status, 201, await put1.text());
  t.equal(put1.headers.get('oci-subject'), subject.digest, 'OCI-Subject on a manifest PUT with subject');
  t.equal(put1.headers.get('docker-content-digest'), sha256Digest(a1), 'registry response headers kept');
  await pushManifest(rs.url, repo, sha256Digest(a2), a2, MANIFEST);
  const plain = await fetch(`${rs.url}/v2/${repo}/manifests/v2`, { method: 'PUT', body: image, headers: { 'content-type': MANIFEST } });
  t.equal(plain.status, 201);
  t.equal(plain.headers.get('oci-subject'), null, 'no OCI-Subject without a subject');

  const all = await fetch(`${rs.url}/v2/${repo}/referrers/${subject.digest}`);
  t.equal(all.status, 200);
  t.equal(all.headers.get('content-type'), OCI_INDEX_MEDIA_TYPE);
  t.equal(all.headers.get('oci-filters-applied'), null);
  const desc = (b: Buffer, type: string): Record<string, unknown> => ({ mediaType: MANIFEST, digest: sha256Digest(b), size: b.length, artifactType: type, annotations: { 'com.example.kind': type } });
  t.same(await all.json(), { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [desc(a1, sociType), desc(a2, 'application/vnd.example.sbom')] });

  const filtered = await fetch(`${rs.url}/v2/${repo}/referrers/${subject.digest}?artifactType=${encodeURIComponent(sociType)}`);
  t.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  t.same(((await filtered.json()) as { manifests: unknown[] }).manifests, [desc(a1, sociType)]);
  const none = await fetch(`${rs.url}/v2/${repo}/referrers/${sha256Digest(Buffer.from('other'))}`);
  t.same(await none.json(), { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [] }, 'unknown subject: empty index');
  t.equal((await fetch(`${rs.url}/v2/${repo}/referrers/nonsense`)).status, 400);

  const back = await fetch(`${rs.url}/v2/${repo}/manifests/${sha256Digest(a1)}`, { headers: { accept: MANIFEST } });
  t.same(Buffer.from(await back.arrayBuffer()), a1, 'manifest stored byte-identical in the real registry');
  t.equal((await fetch(`${reg.url}/v2/${repo}/referrers/${subject.digest}`)).status, 404, 'the registry itself has no referrers API');
  t.same(rs.referrers(repo, subject.digest).map((d) => d.digest), [sha256Digest(a1), sha256Digest(a2)]);
});

t.test('helpers clean up: no listeners, no temp dirs', async (t) => {
  const reg = await startRegistry();
  const ts = await startTokenServer();
  const proxy = await startFaultProxy(reg.url);
  const rs = await startReferrersServer(reg.url);
  const root = reg.root;
  await Promise.all([rs.stop(), proxy.stop(), ts.stop()]);
  await reg.stop();
  t.notOk(existsSync(root));
  for (const url of [reg.url, ts.url, proxy.url, rs.url]) {
    t.equal(await fetch(`${url}/v2/`).then(() => 'answered', () => 'refused'), 'refused', `${url} closed`);
  }
  t.notOk(existsSync(join(root, 'data')));
});
