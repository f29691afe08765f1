import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultHost, hostDirCandidates, loadHosts, parseHostsToml } from '../../fetcher/registry/hosts.js';
import { tempDirFor } from '../helpers/tmp.js';

const summary = (h: ReturnType<typeof defaultHost>) => ({ url: `${h.scheme}://${h.host}${h.path}`, caps: [...h.capabilities].sort(), mirror: h.mirror });

t.test('defaults follow containerd: docker.io via registry-1, loopback over plain HTTP', async (t) => {
  t.same(summary(defaultHost('docker.io')), { url: 'https://registry-1.docker.io/v2', caps: ['pull', 'push', 'resolve'], mirror: false });
  t.equal(defaultHost('localhost:5000').scheme, 'http');
  t.equal(defaultHost('127.0.0.1:5000').scheme, 'http');
  t.equal(defaultHost('[::1]:5000').scheme, 'http');
  t.equal(defaultHost('example.com').scheme, 'https');
  t.equal(defaultHost('example.com', { plainHttp: true }).scheme, 'http');
  t.equal(defaultHost('example.com:5000', { plainHttp: ['example.com:5000'] }).scheme, 'http');
  t.equal(defaultHost('example.com:5000', { plainHttp: ['other.com'] }).scheme, 'https');
  t.same(hostDirCandidates('/etc/certs.d', 'h.com:5000'), ['/etc/certs.d/h.com_5000', '/etc/certs.d/h.com:5000', '/etc/certs.d/_default']);
});

t.test('parses hosts.toml: mirrors in order, then upstream', async (t) => {
  const toml = `
server = "https://registry.example.com"
ca = "upstream-ca.pem"

[host."https://mirror1.local:5000"]
  capabilities = ["pull", "resolve"]
  ca = ["/abs/ca.pem", "rel/ca2.pem"]
  client = [["client.pem", "client.key"]]
  skip_verify = true
  [host."https://mirror1.local:5000".header]
    x-custom = "a"
    x-multi = ["b", "c"]

[host."http://mirror2.local/base"]
  capabilities = ["pull"]
  override_path = true
  client = "both.pem"
`;
  const hosts = parseHostsToml(toml, 'registry.example.com', '/cfg/registry.example.com', 'hosts.toml');
  t.same(hosts.map(summary), [
    { url: 'https://mirror1.local:5000/v2', caps: ['pull', 'resolve'], mirror: true },
    { url: 'http://mirror2.local/base', caps: ['pull'], mirror: true },
    { url: 'https://registry.example.com/v2', caps: ['pull', 'push', 'resolve'], mirror: false },
  ]);
  t.same(hosts[0].tls, {
    caFiles: ['/abs/ca.pem', '/cfg/registry.example.com/rel/ca2.pem'],
    clients: [{ cert: '/cfg/registry.example.com/client.pem', key: '/cfg/registry.example.com/client.key' }],
    skipVerify: true,
  });
  t.same(hosts[0].headers, { 'x-custom': ['a'], 'x-multi': ['b', 'c'] });
  t.same(hosts[1].tls.clients, [{ cert: '/cfg/registry.example.com/both.pem' }]);
  t.same(hosts[2].tls.caFiles, ['/cfg/registry.example.com/upstream-ca.pem']);
});

t.test('no server key: upstream is the registry itself; loopback stays plain HTTP', async (t) => {
  const hosts = parseHostsToml('[host."http://127.0.0.1:6000"]\n', '127.0.0.1:5000', '/d', 'f');
  t.same(hosts.map(summary), [
    { url: 'http://127.0.0.1:6000/v2', caps: ['pull', 'push', 'resolve'], mirror: true },
    { url: 'http://127.0.0.1:5000/v2', caps: ['pull', 'push', 'resolve'], mirror: false },
  ]);
});

t.test('rejects bad hosts.toml with the file and key named', async (t) => {
  t.throws(() => parseHostsToml('server = [', 'r', '/d', '/d/hosts.toml'), /\/d\/hosts.toml: not valid TOML/);
  t.throws(() => parseHostsToml('[host."https://m"]\ncapabilities = ["pull", "fly"]', 'r', '/d', 'f'), /host."https:\/\/m".capabilities: unknown capability "fly"/);
  t.throws(() => parseHostsToml('[host."ftp://m"]', 'r', '/d', 'f'), /scheme ftp: is not http or https/);
  t.throws(() => parseHostsToml('[host."https://m"]\nskip_verify = "yes"', 'r', '/d', 'f'), /skip_verify: expected true or false/);
  t.throws(() => parseHostsToml('server = 5', 'r', '/d', 'f'), /server must be a string/);
});

t.test('loadHosts finds <config_path>/<host>/hosts.toml, host_port, then _default', async (t) => {
  const dir = await tempDirFor(t);
  t.same((await loadHosts(dir, 'a.com')).map(summary), [{ url: 'https://a.com/v2', caps: ['pull', 'push', 'resolve'], mirror: false }]);
  t.same((await loadHosts(undefined, 'a.com')).map(summary), [{ url: 'https://a.com/v2', caps: ['pull', 'push', 'resolve'], mirror: false }]);
  await mkdir(join(dir, '_default'));
  await writeFile(join(dir, '_default', 'hosts.toml'), '[host."https://default-mirror"]\ncapabilities = ["pull"]\n');
  await mkdir(join(dir, 'b.com_5000'));
  await writeFile(join(dir, 'b.com_5000', 'hosts.toml'), 'server = "https://b.com:5000"\n[host."https://b-mirror"]\n');
  t.same((await loadHosts(dir, 'a.com')).map((h) => h.host), ['default-mirror', 'a.com']);
  t.same((await loadHosts(dir, 'b.com:5000')).map((h) => h.host), ['b-mirror', 'b.com:5000']);
});
