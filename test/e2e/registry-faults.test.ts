import t from 'tap';
import { randomBytes } from 'node:crypto';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { sha256Digest } from '../../ztoc/digest.js';
import type { Descriptor } from '../../ztoc/oci.js';
import { startRegistry } from '../helpers/registry.js';
import { listen, startFaultProxy } from '../helpers/fault-proxy.js';

const desc = (data: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256Digest(data), size: data.length });
type Failure = { kind: string; message: string };
const failure = (p: Promise<unknown>): Promise<Failure> => p.then(() => ({ kind: 'none', message: 'succeeded' }), (e: unknown) => e as Failure);

t.test('faults between client and registry', async (t) => {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const proxy = await startFaultProxy(reg.url);
  t.teardown(() => proxy.stop());
  const data = randomBytes(2 * 1024 * 1024 + 3);
  const d = desc(data);
  const setup = new RegistryClient();
  t.teardown(() => setup.close());
  await setup.pushBlob(parseReference(`${reg.host}/fault/app:v1`), d, data);
  const ref = parseReference(`${proxy.host}/fault/app:v1`);
  const blobPath = new RegExp(`/blobs/${d.digest}`);
  const client = new RegistryClient({ retries: { max: 3, baseMs: 20, maxMs: 2000 }, timeouts: { headersMs: 400, bodyMs: 400 } });
  t.teardown(() => client.close());
  const blobGets = () => proxy.log().filter((e) => e.method === 'GET' && blobPath.test(e.path));

  await t.test('connection reset mid-body: refetched whole, correct bytes', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ method: 'GET', path: blobPath, times: 1, action: { kind: 'reset-mid-body', afterBytes: 100_000 } }]);
    t.ok((await client.getBlob(ref, d)).equals(data));
    t.same(blobGets().map((e) => e.outcome), ['reset', 'complete']);
  });

  await t.test('500s then success', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ path: blobPath, times: 2, action: { kind: 'status', status: 500 } }]);
    t.ok((await client.fetchRange(ref, d, 1000, 5000)).equals(data.subarray(1000, 5000)));
    t.same(blobGets().map((e) => e.status), [500, 500, 206]);
  });

  await t.test('429 with Retry-After is honoured', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ path: blobPath, times: 1, action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } }]);
    const start = Date.now();
    t.ok((await client.fetchRange(ref, d, 0, 10)).equals(data.subarray(0, 10)));
    const took = Date.now() - start;
    t.ok(took >= 950 && took < 2500, `waited ${took} ms`);
  });

  await t.test('4xx is never retried', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ path: blobPath, action: { kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no way"}]}' } }]);
    const e = await failure(client.getBlob(ref, d));
    t.equal(e.kind, 'failed-precondition');
    t.match(e.message, /HTTP 403 DENIED: no way/);
    t.equal(blobGets().length, 1);
  });

  await t.test('a truncated body is fetched again', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ path: blobPath, times: 1, action: { kind: 'truncate' } }]);
    t.ok((await client.getBlob(ref, d)).equals(data));
    t.same(blobGets().map((e) => e.outcome), ['truncated', 'complete']);
  });

  await t.test('wrong bytes: digest mismatch, never accepted', async (t) => {
    proxy.setRules([{ path: blobPath, action: { kind: 'corrupt', offset: 777 } }]);
    const e = await failure(client.getBlob(ref, d));
    t.equal(e.kind, 'invalid-argument');
    t.match(e.message, new RegExp(`blob ${proxy.host}/fault/app@${d.digest}: digest mismatch`));
    const chunks: Uint8Array[] = [];
    const s = await failure((async () => {
      for await (const c of client.streamBlob(ref, d)) chunks.push(c);
    })());
    t.equal(s.kind, 'invalid-argument');
    t.match(s.message, /digest mismatch/);
  });

  await t.test('a stalled server ends in a clear error within the timeouts', async (t) => {
    proxy.setRules([{ path: blobPath, action: { kind: 'stall' } }]);
    const quick = new RegistryClient({ retries: { max: 1, baseMs: 10 }, timeouts: { headersMs: 300, bodyMs: 300 } });
    t.teardown(() => quick.close());
    const start = Date.now();
    const e = await failure(quick.getBlob(ref, d));
    const took = Date.now() - start;
    t.equal(e.kind, 'unavailable');
    t.match(e.message, /UND_ERR_HEADERS_TIMEOUT|timeout/i);
    t.ok(took < 2000, `gave up after ${took} ms`);

    proxy.setRules([{ path: blobPath, action: { kind: 'stall', afterHeaders: true, afterBytes: 5000 } }]);
    const total = new RegistryClient({ retries: { max: 10, baseMs: 10 }, timeouts: { headersMs: 300, bodyMs: 300, totalMs: 1200 } });
    t.teardown(() => total.close());
    const s2 = Date.now();
    const e2 = await failure(total.getBlob(ref, d));
    t.equal(e2.kind, 'unavailable');
    t.ok(Date.now() - s2 < 2000, `totalMs bounds retries (${Date.now() - s2} ms)`);

    proxy.setRules([{ path: blobPath, times: 1, action: { kind: 'stall', afterHeaders: true, afterBytes: 5000 } }]);
    t.ok((await client.getBlob(ref, d)).equals(data), 'one stall then success');
  });

  await t.test('streamBlob resumes after a reset with a Range from the next byte', async (t) => {
    proxy.clearLog();
    proxy.setRules([{ path: blobPath, times: 1, action: { kind: 'reset-mid-body', afterBytes: 700_000 } }]);
    const parts: Buffer[] = [];
    for await (const c of client.streamBlob(ref, d)) parts.push(Buffer.from(c));
    t.ok(Buffer.concat(parts).equals(data), 'every byte once, in order');
    const gets = blobGets();
    t.equal(gets.length, 2);
    t.match(gets[1].range, /^bytes=\d+-$/);
    t.ok(Number(/bytes=(\d+)-/.exec(gets[1].range ?? '')?.[1]) > 0, 'resumed, not restarted');
  });
});

t.test('a 200 answer to a Range GET is never mistaken for the range', async (t) => {
  const blob = randomBytes(100_000);
  const d = desc(blob);
  let mode: 'whole' | 'short' = 'whole';
  const srv = await listen((req, res) => {
    if (!req.url?.includes('/blobs/')) return void res.writeHead(404).end();
    const body = mode === 'whole' ? blob : blob.subarray(0, 50_000);
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  t.teardown(() => srv.close());
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const ref = parseReference(`${srv.host}/r/app:v1`);
  t.ok((await client.fetchRange(ref, d, 1234, 5678)).equals(blob.subarray(1234, 5678)), 'slice of a verified whole body');
  mode = 'short';
  const e = await failure(client.fetchRange(ref, d, 0, 50_000));
  t.equal(e.kind, 'invalid-argument');
  t.match(e.message, /answered 200 with 50000 bytes, not a range nor the whole 100000-byte blob/);
});
