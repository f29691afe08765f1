import t from 'tap';
import { SociError } from '../../errors/errors.js';
import { formatReference, hostnameOf, parseReference, withObject } from '../../fetcher/registry/reference.js';

const D = 'sha256:' + 'ab'.repeat(32);

t.test('normalises references as docker/distribution does', async (t) => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined],
    ['library/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['index.docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['user/app:v1', 'docker.io', 'user/app', 'v1', undefined],
    [`busybox@${D}`, 'docker.io', 'library/busybox', undefined, D],
    [`busybox:1@${D}`, 'docker.io', 'library/busybox', '1', D],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/app:x', 'localhost:5000', 'app', 'x', undefined],
    ['127.0.0.1:5000/a/b/c:tag', '127.0.0.1:5000', 'a/b/c', 'tag', undefined],
    ['[::1]:5000/app', '[::1]:5000', 'app', 'latest', undefined],
    ['[::1]/app:t', '[::1]', 'app', 't', undefined],
    [`[fe80::1]:443/app@${D}`, '[fe80::1]:443', 'app', undefined, D],
    ['public.ecr.aws/soci/app_x-y.z:1.0-rc_1', 'public.ecr.aws', 'soci/app_x-y.z', '1.0-rc_1', undefined],
    ['ghcr.io/a__b/c--d', 'ghcr.io', 'a__b/c--d', 'latest', undefined],
    ['Example.com/app', 'Example.com', 'app', 'latest', undefined],
    ['localhost:5000', 'docker.io', 'library/localhost', '5000', undefined],
  ];
  for (const [input, domain, path, tag, digest] of cases) {
    const r = parseReference(input);
    t.same({ domain: r.domain, path: r.path, tag: r.tag, digest: r.digest }, { domain, path, tag, digest }, input);
  }
  t.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
  t.equal(formatReference(parseReference(`[::1]:5000/app:1@${D}`)), `[::1]:5000/app:1@${D}`);
});

t.test('rejects malformed references with a message naming the cause', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Busybox', /lower case/],
    ['docker.io/Library/busybox', /lower case/],
    ['busybox:', /tag ""/],
    ['busybox:-x', /tag "-x"/],
    [`busybox:${'a'.repeat(129)}`, /tag/],
    ['busybox@sha256:abc', /digest/],
    [`busybox@sha256:${'A'.repeat(64)}`, /digest/],
    ['https://docker.io/busybox', /scheme/],
    ['a//b', /path component ""/],
    ['app/', /path component ""/],
    ['host:99999/app', /port/],
    ['host:x1/app', /port|tag/],
    ['[::1/app', /IPv6|unclosed/],
    ['-bad.com/app', /host name/],
    ['foo bar', /white space/],
    ['a/-b', /path component "-b"/],
    ['localhost:5000/', /repository path|path component/],
    [`h.com/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [input, re] of bad) {
    try {
      parseReference(input);
      t.fail(`accepted ${JSON.stringify(input)}`);
    } catch (e) {
      t.ok(e instanceof SociError && e.kind === 'invalid-argument', `${input}: invalid-argument`);
      t.match((e as Error).message, re, input);
    }
  }
});

t.test('withObject and hostnameOf', async (t) => {
  const r = parseReference('127.0.0.1:5000/app:v1');
  t.same(withObject(r, D), { domain: '127.0.0.1:5000', path: 'app', digest: D });
  t.same(withObject(r, `sha256-${'ab'.repeat(32)}`), { domain: '127.0.0.1:5000', path: 'app', tag: `sha256-${'ab'.repeat(32)}` });
  t.throws(() => withObject(r, 'no/slash'), /neither a tag nor/);
  t.equal(hostnameOf('127.0.0.1:5000'), '127.0.0.1');
  t.equal(hostnameOf('[::1]:5000'), '::1');
  t.equal(hostnameOf('[::1]'), '::1');
  t.equal(hostnameOf('localhost'), 'localhost');
});
