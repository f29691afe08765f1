import t from 'tap';
import { checkContentRange, checkRangeBounds, parseContentRange, rangeHeader } from '../../fetcher/registry/content-range.js';
import { DEFAULT_RETRY, RetryableError, backoffDelay, delayFor, isNetworkError, isRetryableStatus, parseRetryAfter, withRetries } from '../../fetcher/registry/retry.js';
import { kindForStatus, registryErrorSummary, statusError } from '../../fetcher/registry/status-error.js';
import { selectPlatformManifest } from '../../fetcher/registry/platform-select.js';
import { SociError } from '../../errors/errors.js';

t.test('Retry-After', async (t) => {
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  t.equal(parseRetryAfter('3', now), 3000);
  t.equal(parseRetryAfter(['0'], now), 0);
  t.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
  t.equal(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now), 0);
  t.equal(parseRetryAfter('-1', now), undefined);
  t.equal(parseRetryAfter('soon', now), undefined);
  t.equal(parseRetryAfter(undefined, now), undefined);
  t.equal(delayFor(new RetryableError('x', 60_000), 1, DEFAULT_RETRY), DEFAULT_RETRY.maxMs, 'capped');
  t.equal(delayFor(new RetryableError('x', 1500), 1, DEFAULT_RETRY), 1500);
});

t.test('backoff grows exponentially with jitter and a cap', async (t) => {
  const p = { max: 5, baseMs: 100, maxMs: 1000 };
  t.equal(backoffDelay(1, p, () => 0), 50);
  t.equal(backoffDelay(1, p, () => 1), 100);
  t.equal(backoffDelay(3, p, () => 1), 400);
  t.equal(backoffDelay(10, p, () => 1), 1000);
  t.equal(backoffDelay(10, p, () => 0), 500);
});

t.test('retryable statuses and errors', async (t) => {
  t.same([429, 500, 502, 503, 504].map(isRetryableStatus), [true, true, true, true, true]);
  t.same([400, 401, 403, 404, 416, 501].map(isRetryableStatus), [false, false, false, false, false, false]);
  t.ok(isNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
  t.ok(isNetworkError(new Error('wrap', { cause: Object.assign(new Error('y'), { code: 'UND_ERR_SOCKET' }) })));
  t.notOk(isNetworkError(new Error('plain')));
  let calls = 0;
  const v = await withRetries({ what: 'op', policy: { max: 3, baseMs: 1, maxMs: 2 } }, async () => {
    calls++;
    if (calls < 3) throw new RetryableError('HTTP 503');
    return 42;
  });
  t.equal(v, 42);
  t.equal(calls, 3);
  calls = 0;
  await t.rejects(withRetries({ what: 'op', policy: { max: 2, baseMs: 1, maxMs: 2 } }, async () => {
    calls++;
    throw new RetryableError('HTTP 500');
  }), { kind: 'unavailable', message: /op: HTTP 500 \(gave up after 3 attempts\)/ });
  t.equal(calls, 3);
  calls = 0;
  const err = await withRetries({ what: 'op', policy: { max: 5, baseMs: 1, maxMs: 2 } }, async () => {
    calls++;
    throw new SociError('not-found', 'gone');
  }).catch((e: unknown) => e);
  t.equal((err as SociError).kind, 'not-found');
  t.equal(calls, 1, 'never retries answers');
});

t.test('Content-Range checks', async (t) => {
  t.same(parseContentRange('bytes 0-99/1000'), { first: 0, last: 99, total: 1000 });
  t.same(parseContentRange('bytes 5-5/*'), { first: 5, last: 5, total: undefined });
  t.equal(parseContentRange('bytes 9-5/10'), undefined);
  t.equal(parseContentRange('0-99'), undefined);
  t.equal(rangeHeader(10, 20), 'bytes=10-19');
  t.doesNotThrow(() => checkContentRange('bytes 10-19/100', 10, 20, 100, 'r'));
  t.doesNotThrow(() => checkContentRange('bytes 10-19/*', 10, 20, 100, 'r'));
  t.throws(() => checkContentRange('bytes 0-19/100', 10, 20, 100, 'r'), /asked for bytes 10-19\/100, got Content-Range bytes 0-19\/100/);
  t.throws(() => checkContentRange('bytes 10-19/101', 10, 20, 100, 'r'), /got Content-Range/);
  t.throws(() => checkContentRange(undefined, 10, 20, 100, 'r'), /missing or malformed/);
  t.throws(() => checkRangeBounds(5, 101, 100, 'r'), /outside the blob of 100 bytes/);
  t.throws(() => checkRangeBounds(-1, 2, 100, 'r'), /outside/);
  t.throws(() => checkRangeBounds(6, 5, 100, 'r'), /outside/);
  t.doesNotThrow(() => checkRangeBounds(100, 100, 100, 'r'));
});

t.test('registry error bodies and kinds', async (t) => {
  t.equal(registryErrorSummary(Buffer.from('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"x"}]}')), 'BLOB_UNKNOWN: blob unknown to registry');
  t.equal(registryErrorSummary(Buffer.from('404 page not found\n')), '404 page not found');
  t.equal(registryErrorSummary(Buffer.alloc(0)), '');
  t.same([404, 401, 403, 400, 416, 500, 429, 405].map(kindForStatus), ['not-found', 'failed-precondition', 'failed-precondition', 'invalid-argument', 'invalid-argument', 'unavailable', 'unavailable', 'failed-precondition']);
  const e = statusError(404, 'GET blob r@d', Buffer.from('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}'));
  t.equal(e.kind, 'not-found');
  t.equal(e.message, 'GET blob r@d: HTTP 404 NAME_UNKNOWN: repository name not known');
});

t.test('platform selection from an index', async (t) => {
  const d = (digest: string, p?: { os: string; architecture: string; variant?: string }) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1, platform: p });
  const idx = { schemaVersion: 2, manifests: [
    d('sha256:att', { os: 'unknown', architecture: 'unknown' }),
    d('sha256:armv6', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    d('sha256:armv7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
    d('sha256:amd64', { os: 'linux', architecture: 'amd64' }),
    d('sha256:arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
  ] };
  t.equal(selectPlatformManifest(idx, { os: 'linux', architecture: 'amd64' }).digest, 'sha256:amd64');
  t.equal(selectPlatformManifest(idx, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest, 'sha256:armv7');
  t.equal(selectPlatformManifest(idx, { os: 'linux', architecture: 'arm64' }).digest, 'sha256:arm64');
  t.throws(() => selectPlatformManifest(idx, { os: 'linux', architecture: 's390x' }), /no manifest for platform linux\/s390x \(has: unknown\/unknown, linux\/arm\/v6/);
});
