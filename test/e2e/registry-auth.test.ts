import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { dockerConfigCredentials, staticCredentials } from '../../fetcher/registry/credentials.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { sha256Digest } from '../../ztoc/digest.js';
import type { Descriptor } from '../../ztoc/oci.js';
import { htpasswdLine, startRegistry } from '../helpers/registry.js';
import { startTokenServer, tokenAuthRegistryConfig } from '../helpers/token-server.js';
import { issueClientCert, issueServerCert, makeCa } from '../helpers/tls-ca.js';
import { freePort } from '../helpers/process.js';
import { tempDirFor } from '../helpers/tmp.js';

const desc = (data: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256Digest(data), size: data.length });

type Failure = { kind: string; message: string };
const failure = (p: Promise<unknown>): Promise<Failure> =>
  p.then(() => ({ kind: 'none', message: 'succeeded' }), (e: unknown) => e as Failure);

t.test('htpasswd Basic auth, from --user and from docker config', async (t) => {
  const reg = await startRegistry({ htpasswd: await htpasswdLine('bob', 'b0b-s3cret') });
  t.teardown(() => reg.stop());
  const ref = parseReference(`${reg.host}/basic/app:v1`);
  const data = randomBytes(5000);

  const anon = new RegistryClient();
  t.teardown(() => anon.close());
  const denied = await failure(anon.pushBlob(ref, desc(data), data));
  t.equal(denied.kind, 'failed-precondition');
  t.match(denied.message, /authentication required/);

  const wrong = new RegistryClient({ credentials: staticCredentials({ username: 'bob', password: 'wr0ng-pw' }) });
  t.teardown(() => wrong.close());
  const bad = await failure(wrong.getBlob(ref, desc(data)));
  t.equal(bad.kind, 'failed-precondition');
  t.match(bad.message, /credentials rejected/);
  t.notMatch(bad.message, /wr0ng-pw/, 'password not in message');

  const good = new RegistryClient({ credentials: staticCredentials({ username: 'bob', password: 'b0b-s3cret' }) });
  t.teardown(() => good.close());
  await good.pushBlob(ref, desc(data), data);
  t.ok((await good.getBlob(ref, desc(data))).equals(data));

  const dir = await tempDirFor(t);
  const cfg = join(dir, 'config.json');
  await writeFile(cfg, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('bob:b0b-s3cret').toString('base64') } } }));
  const viaCfg = new RegistryClient({ credentials: dockerConfigCredentials({ path: cfg }) });
  t.teardown(() => viaCfg.close());
  t.ok((await viaCfg.fetchRange(ref, desc(data), 10, 20)).equals(data.subarray(10, 20)));
});

t.test('Bearer tokens from a token server: scopes, caching, refetch on 401', async (t) => {
  const ts = await startTokenServer({ users: { alice: 'al1ce-pw' } });
  t.teardown(() => ts.stop());
  const reg = await startRegistry({ tokenAuth: tokenAuthRegistryConfig(ts) });
  t.teardown(() => reg.stop());
  const ref = parseReference(`${reg.host}/tok/app:v1`);
  const data = randomBytes(70_000);

  const alice = new RegistryClient({ credentials: staticCredentials({ username: 'alice', password: 'al1ce-pw' }) });
  t.teardown(() => alice.close());
  await alice.pushBlob(ref, desc(data), data);
  const afterPush = ts.tokenCount();
  t.ok(afterPush >= 1 && afterPush <= 2, `push used ${afterPush} token(s)`);
  t.ok(ts.requests().every((r) => r.user === 'alice' && r.service === ts.service), 'token requests carried Basic creds and service');
  t.ok(ts.requests().some((r) => r.scopes.includes('repository:tok/app:pull,push')));
  for (let i = 0; i < 5; i++) t.ok((await alice.fetchRange(ref, desc(data), i * 100, i * 100 + 50)).equals(data.subarray(i * 100, i * 100 + 50)));
  await Promise.all([1, 2, 3, 4].map(() => alice.getBlob(ref, desc(data))));
  t.equal(ts.tokenCount(), afterPush + 1, 'one pull token for all reads, concurrent ones shared');

  // Tokens the registry rejects (expired) though advertised as fresh: 401 -> one refetch.
  ts.setTtl(-300, 300);
  const stale = new RegistryClient({ credentials: staticCredentials({ username: 'alice', password: 'al1ce-pw' }) });
  t.teardown(() => stale.close());
  const n0 = ts.tokenCount();
  const rejected = await failure(stale.getBlob(ref, desc(data)));
  t.equal(rejected.kind, 'failed-precondition');
  t.equal(ts.tokenCount() - n0, 2, 'fetched once, refetched once after the 401, then gave up');
  ts.setTtl(300);
  t.ok((await stale.getBlob(ref, desc(data))).equals(data), 'cached bad token replaced after a 401');
  t.equal(ts.tokenCount() - n0, 3);

  const anon = new RegistryClient();
  t.teardown(() => anon.close());
  t.ok((await anon.getBlob(ref, desc(data))).equals(data), 'anonymous pull token');
  const small = randomBytes(10);
  const push = await failure(anon.pushBlob(ref, desc(small), small));
  t.equal(push.kind, 'failed-precondition', `anonymous push denied: ${push.message}`);

  const wrong = new RegistryClient({ credentials: staticCredentials({ username: 'alice', password: 'n0t-it' }) });
  t.teardown(() => wrong.close());
  const w = await failure(wrong.getBlob(ref, desc(data)));
  t.equal(w.kind, 'failed-precondition');
  t.match(w.message, /token from http:\/\/127\.0\.0\.1:\d+\/token .*denied \(HTTP 401, credentials rejected\)/);
  t.notMatch(w.message, /n0t-it/);
});

t.test('TLS with a private CA, client certificates and skip_verify via hosts.toml', async (t) => {
  const dir = await tempDirFor(t);
  const ca = await makeCa(dir);
  const server = await issueServerCert(ca, dir);
  const clientCert = await issueClientCert(ca, dir, 'soci-client');
  const reg = await startRegistry({ tls: server });
  t.teardown(() => reg.stop());
  const ref = parseReference(`${reg.host}/tls/app:v1`);
  const data = randomBytes(4096);
  const hostsDir = join(dir, 'certs.d');
  const hostDir = join(hostsDir, reg.host);
  await mkdir(hostDir, { recursive: true });

  await writeFile(join(hostDir, 'hosts.toml'), `server = "https://${reg.host}"\nca = "${ca.certPath}"\nclient = [["${clientCert.certPath}", "${clientCert.keyPath}"]]\n`);
  const ok = new RegistryClient({ hostsDir });
  t.teardown(() => ok.close());
  await ok.pushBlob(ref, desc(data), data);
  t.ok((await ok.getBlob(ref, desc(data))).equals(data), 'verified against the private CA, with a client cert');

  const otherDir = join(dir, 'other.d');
  await mkdir(join(otherDir, reg.host), { recursive: true });
  await writeFile(join(otherDir, reg.host, 'hosts.toml'), `server = "https://${reg.host}"\nclient = [["${clientCert.certPath}", "${clientCert.keyPath}"]]\n`);
  const untrusted = new RegistryClient({ hostsDir: otherDir, retries: { max: 0 } });
  t.teardown(() => untrusted.close());
  const e = await failure(untrusted.getBlob(ref, desc(data)));
  t.equal(e.kind, 'unavailable');
  t.match(e.message, /certificate/i, 'names the TLS cause');

  await writeFile(join(otherDir, reg.host, 'hosts.toml'), `server = "https://${reg.host}"\nskip_verify = true\nclient = [["${clientCert.certPath}", "${clientCert.keyPath}"]]\n`);
  const skip = new RegistryClient({ hostsDir: otherDir });
  t.teardown(() => skip.close());
  t.ok((await skip.getBlob(ref, desc(data))).equals(data), 'skip_verify');
});

t.test('hosts.toml mirrors: a dead one falls back, a live one serves', async (t) => {
  const upstream = await startRegistry();
  t.teardown(() => upstream.stop());
  const mirror = await startRegistry();
  t.teardown(() => mirror.stop());
  const dir = await tempDirFor(t);
  const deadPort = await freePort();
  const data = randomBytes(20_000);
  const onlyUpstream = randomBytes(1000);

  const pushTo = new RegistryClient();
  t.teardown(() => pushTo.close());
  const upRef = parseReference(`${upstream.host}/mir/app:v1`);
  await pushTo.pushBlob(upRef, desc(data), data);
  await pushTo.pushBlob(upRef, desc(onlyUpstream), onlyUpstream);
  await pushTo.pushBlob(parseReference(`${mirror.host}/mir/app:v1`), desc(data), data);

  await mkdir(join(dir, upstream.host), { recursive: true });
  await writeFile(join(dir, upstream.host, 'hosts.toml'), [
    `server = "http://${upstream.host}"`,
    `[host."http://127.0.0.1:${deadPort}"]`, '  capabilities = ["pull", "resolve"]',
    `[host."http://${mirror.host}"]`, '  capabilities = ["pull", "resolve"]', '',
  ].join('\n'));
  const client = new RegistryClient({ hostsDir: dir, retries: { baseMs: 10 } });
  t.teardown(() => client.close());
  const before = (await upstream.accessLog()).length;
  t.ok((await client.getBlob(upRef, desc(data))).equals(data), 'served');
  t.ok((await client.fetchRange(upRef, desc(data), 5, 10)).equals(data.subarray(5, 10)));
  t.same((await upstream.accessLog()).slice(before).filter((e) => e.method === 'GET'), [], 'upstream not asked');
  const mirrorGets = (await mirror.accessLog()).filter((e) => e.method === 'GET' && e.path.includes(desc(data).digest));
  t.equal(mirrorGets.length, 2);
  t.ok(mirrorGets.every((e) => e.path.includes(`ns=${encodeURIComponent(upstream.host)}`) || e.path.includes(`ns=${upstream.host}`)), 'mirror requests carry ns=');
  t.ok((await client.getBlob(upRef, desc(onlyUpstream))).equals(onlyUpstream), 'not on the mirror: upstream');
  await pushTo.pushBlob(upRef, desc(Buffer.from('x')), Buffer.from('x'));
  const viaMirrorPush = await client.pushBlob(upRef, desc(Buffer.from('y')), Buffer.from('y')).then(() => 'ok');
  t.equal(viaMirrorPush, 'ok');
  t.ok((await upstream.accessLog()).some((e) => e.method === 'PUT' && e.path.includes(sha256Digest(Buffer.from('y')).slice(7))), 'pushes go upstream only');
});
