import t from 'tap';
import { basicHeader, parseTokenResponse, parseWwwAuthenticate } from '../../fetcher/registry/auth.js';

t.test('parses WWW-Authenticate challenges', async (t) => {
  t.same(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  t.same(parseWwwAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  t.same(parseWwwAuthenticate('Basic realm="a, b", Bearer realm="http://x/token", service=reg, error="insufficient_scope"'), [
    { scheme: 'basic', params: { realm: 'a, b' } },
    { scheme: 'bearer', params: { realm: 'http://x/token', service: 'reg', error: 'insufficient_scope' } },
  ]);
  t.same(parseWwwAuthenticate('bearer  Realm = "q\\"uoted" ,scope="repository:a:pull repository:b:pull"'), [
    { scheme: 'bearer', params: { realm: 'q"uoted', scope: 'repository:a:pull repository:b:pull' } },
  ]);
  t.same(parseWwwAuthenticate('Negotiate'), [{ scheme: 'negotiate', params: {} }]);
  t.same(parseWwwAuthenticate(''), []);
});

t.test('parses token responses', async (t) => {
  t.same(parseTokenResponse(Buffer.from('{"token":"abc","expires_in":300}'), 'x'), { token: 'abc', expiresIn: 300, issuedAt: undefined });
  t.same(parseTokenResponse(Buffer.from('{"access_token":"def"}'), 'x'), { token: 'def', expiresIn: 60, issuedAt: undefined });
  t.equal(parseTokenResponse(Buffer.from('{"token":"a","issued_at":"2024-01-02T03:04:05Z"}'), 'x').issuedAt, Date.UTC(2024, 0, 2, 3, 4, 5));
  t.throws(() => parseTokenResponse(Buffer.from('{}'), 'tok'), /tok: token response has no token/);
  t.throws(() => parseTokenResponse(Buffer.from('<html>'), 'tok'), /not JSON/);
  t.equal(basicHeader({ username: 'u', password: 'p:w' }), 'Basic ' + Buffer.from('u:p:w').toString('base64'));
});
