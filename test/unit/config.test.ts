import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import { SociError } from '../../errors/errors.js';
import { ConfigError } from '../../config/config-error.js';
import { renderConfigDocs } from '../../config/docs.js';
import { defaultConfig, loadConfig, parseConfig } from '../../config/load.js';
import { CONFIG_SCHEMA, DEFAULT_CONFIG_PATH, type Config } from '../../config/schema.js';
import type { NodeSpec, SectionSpec } from '../../config/schema-types.js';
import { schemaEntries } from '../../config/schema-walk.js';
import { tempDirFor } from '../helpers/tmp.js';

const EXAMPLE = fileURLToPath(new URL('../../../config/example-config.toml', import.meta.url));

/** Typed as Config, so the compiler checks the interface and this literal agree. */
const DEFAULTS: Config = {
  root_path: '/var/lib/soci-snapshotter-grpc',
  address: '/run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock',
  log_level: 'info',
  metrics_address: '',
  metrics_network: 'tcp',
  mount_timeout_sec: 30,
  skip_check_snapshotter_supported: false,
  pull_modes: { soci_v1: { enable: true }, soci_v2: { enable: true } },
  snapshotter: { min_layer_size: 0, allow_invalid_mounts_on_restart: false },
  background_fetch: {
    disable: false,
    silence_period_msec: 30000,
    fetch_period_msec: 500,
    max_queue_size: 100,
    emit_metric_period_sec: 10,
    bandwidth_bytes_per_sec: 0,
  },
  http: {
    dial_timeout_msec: 3000,
    response_header_timeout_msec: 3000,
    request_timeout_msec: 30000,
    max_retries: 8,
    min_wait_msec: 30,
    max_wait_msec: 300000,
  },
  blob: {
    valid_interval: 60,
    fetching_timeout_sec: 300,
    max_retries: 8,
    min_wait_msec: 30,
    max_wait_msec: 300000,
    max_span_verification_retries: 0,
    max_concurrent_fetches: 8,
    readahead_spans: 4,
    fetch_next_span: true,
  },
  fuse: {
    attr_timeout: 3600,
    entry_timeout: 3600,
    negative_timeout: 3600,
    log_fuse_operations: false,
    max_read: 1048576,
    readahead_kb: 1024,
    allow_other: true,
  },
  cache: {
    disk_cache_max_bytes: 10737418240,
    memory_cache_max_bytes: 33554432,
    directory: '/var/lib/soci-snapshotter-grpc/cache',
  },
  content_store: { type: 'soci' },
  resolver: { host: {} },
  registry: { config_path: '/etc/containerd/certs.d', configs: {} },
};

const FULL_TOML = `
root_path = "/srv/soci"
address = "/srv/soci.sock"
log_level = "debug"
metrics_address = "127.0.0.1:9100"
metrics_network = "tcp"
mount_timeout_sec = 5
skip_check_snapshotter_supported = true
[pull_modes.soci_v1]
enable = false
[pull_modes.soci_v2]
enable = false
[snapshotter]
min_layer_size = 10000000
allow_invalid_mounts_on_restart = true
[background_fetch]
disable = true
silence_period_msec = 1
fetch_period_msec = 2
max_queue_size = 3
emit_metric_period_sec = 4
bandwidth_bytes_per_sec = 5
[http]
dial_timeout_msec = 11
response_header_timeout_msec = 12
request_timeout_msec = 13
max_retries = 14
min_wait_msec = 15
max_wait_msec = 16
[blob]
valid_interval = 21
fetching_timeout_sec = 22
max_retries = 23
min_wait_msec = 24
max_wait_msec = 25
max_span_verification_retries = 26
max_concurrent_fetches = 27
readahead_spans = 28
fetch_next_span = false
[fuse]
attr_timeout = 31
entry_timeout = 32
negative_timeout = 0
log_fuse_operations = true
max_read = 131072
readahead_kb = 0
allow_other = false
[cache]
disk_cache_max_bytes = 41
memory_cache_max_bytes = 0
directory = "/cache"
[content_store]
type = "soci"
[[resolver.host."docker.io".mirrors]]
host = "mirror-a:5000"
insecure = true
request_timeout_sec = 7
[[resolver.host."docker.io".mirrors]]
host = "mirror-b"
[registry]
config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
[registry.configs."ghcr.io".auth]
username = "u"
password = "p"
auth = "dTpw"
identitytoken = "tok"
[registry.configs."ghcr.io".tls]
insecure_skip_verify = true
ca_file = "/ca.pem"
cert_file = "/c.pem"
key_file = "/k.pem"
`;

const FULL: Config = {
  root_path: '/srv/soci',
  address: '/srv/soci.sock',
  log_level: 'debug',
  metrics_address: '127.0.0.1:9100',
  metrics_network: 'tcp',
  mount_timeout_sec: 5,
  skip_check_snapshotter_supported: true,
  pull_modes: { soci_v1: { enable: false }, soci_v2: { enable: false } },
  snapshotter: { min_layer_size: 10000000, allow_invalid_mounts_on_restart: true },
  background_fetch: {
    disable: true,
    silence_period_msec: 1,
    fetch_period_msec: 2,
    max_queue_size: 3,
    emit_metric_period_sec: 4,
    bandwidth_bytes_per_sec: 5,
  },
  http: {
    dial_timeout_msec: 11,
    response_header_timeout_msec: 12,
    request_timeout_msec: 13,
    max_retries: 14,
    min_wait_msec: 15,
    max_wait_msec: 16,
  },
  blob: {
    valid_interval: 21,
    fetching_timeout_sec: 22,
    max_retries: 23,
    min_wait_msec: 24,
    max_wait_msec: 25,
    max_span_verification_retries: 26,
    max_concurrent_fetches: 27,
    readahead_spans: 28,
    fetch_next_span: false,
  },
  fuse: {
    attr_timeout: 31,
    entry_timeout: 32,
    negative_timeout: 0,
    log_fuse_operations: true,
    max_read: 131072,
    readahead_kb: 0,
    allow_other: false,
  },
  cache: { disk_cache_max_bytes: 41, memory_cache_max_bytes: 0, directory: '/cache' },
  content_store: { type: 'soci' },
  resolver: {
    host: {
      'docker.io': {
        mirrors: [
          { host: 'mirror-a:5000', insecure: true, request_timeout_sec: 7 },
          { host: 'mirror-b', insecure: false, request_timeout_sec: 0 },
        ],
      },
    },
  },
  registry: {
    config_path: '/etc/containerd/certs.d:/etc/docker/certs.d',
    configs: {
      'ghcr.io': {
        auth: { username: 'u', password: 'p', auth: 'dTpw', identitytoken: 'tok' },
        tls: { insecure_skip_verify: true, ca_file: '/ca.pem', cert_file: '/c.pem', key_file: '/k.pem' },
      },
    },
  },
};

/** The problems a config text is refused with. */
function problemsOf(text: string, source = '/etc/x.toml'): readonly string[] {
  try {
    parseConfig(text, source);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('config was accepted');
}

/** Key paths present in a parsed TOML table, spelled as schemaEntries spells them. */
function presentPaths(spec: SectionSpec, table: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, node] of Object.entries(spec.fields) as Array<[string, NodeSpec]>) {
    const v = table[name];
    if (v === undefined) continue;
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (node.kind === 'section') out.push(...presentPaths(node, v as Record<string, unknown>, path));
    else out.push(path);
    if (node.kind === 'map') {
      for (const entry of Object.values(v as Record<string, Record<string, unknown>>)) {
        out.push(...presentPaths(node.value, entry, `${path}.${node.keyName}`));
      }
    }
    if (node.kind === 'list') {
      for (const item of v as Array<Record<string, unknown>>) out.push(...presentPaths(node.item, item, `${path}[]`));
    }
  }
  return [...new Set(out)];
}

function isDeepFrozen(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

t.test('defaults: every key present with its documented value, deeply frozen', async (t) => {
  const cfg = defaultConfig();
  t.strictSame(cfg, DEFAULTS);
  t.ok(isDeepFrozen(cfg));
  t.throws(() => {
    (cfg.fuse as { attr_timeout: number }).attr_timeout = 1;
  }, TypeError);
  t.equal(DEFAULT_CONFIG_PATH, '/etc/soci-snapshotter-grpc/config.toml');
  // Every schema field outside maps/lists is present; derived ones differ from their sentinel only where documented.
  const derived = new Set(['cache.directory', 'blob.max_retries', 'blob.min_wait_msec', 'blob.max_wait_msec']);
  for (const { path, node } of schemaEntries(CONFIG_SCHEMA)) {
    if (path.includes('<') || path.includes('[]')) continue;
    const value = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], cfg);
    if (node.kind === 'field' && !derived.has(path)) t.equal(value, node.default, path);
    else t.not(value, undefined, path);
  }
});

t.test('full config with every key set round-trips', async (t) => {
  const dir = await tempDirFor(t);
  const file = join(dir, 'config.toml');
  await writeFile(file, FULL_TOML);
  const cfg = loadConfig(file);
  t.strictSame(cfg, FULL);
  t.ok(isDeepFrozen(cfg));
  // What we load, written back as TOML, loads to the same value.
  const again = join(dir, 'again.toml');
  await writeFile(again, stringify(cfg));
  t.strictSame(loadConfig(again), FULL);
});

t.test('file presence: default path may be missing, an explicit one may not', async (t) => {
  const dir = await tempDirFor(t);
  const missing = join(dir, 'nope.toml');
  t.strictSame(loadConfig(missing, { mustExist: false }), DEFAULTS);
  t.throws(() => loadConfig(missing), { name: 'SociError', kind: 'not-found', message: `config file ${missing}: not found` });
  t.throws(() => loadConfig(dir), { kind: 'invalid-argument', message: `config file ${dir}: cannot read (EISDIR)` });
  const empty = join(dir, 'empty.toml');
  await writeFile(empty, '');
  t.strictSame(loadConfig(empty), DEFAULTS);
});

t.test('unknown keys name the full key path', async (t) => {
  t.strictSame(problemsOf('[fuse]\natrr_timeout = 3\n'), ['unknown key "fuse.atrr_timeout" in /etc/x.toml']);
  t.strictSame(problemsOf('debug_address = ""\n[directory_cache]\nsync_add = true\n'), [
    'unknown key "debug_address" in /etc/x.toml',
    'unknown key "directory_cache" in /etc/x.toml',
  ]);
  t.strictSame(problemsOf('[[resolver.host."docker.io".mirrors]]\nhost = "m"\nport = 1\n'), [
    'unknown key "resolver.host.\\"docker.io\\".mirrors[0].port" in /etc/x.toml',
  ]);
  t.strictSame(problemsOf('[registry.configs.ghcr.auth]\nuser = "u"\n'), [
    'unknown key "registry.configs.ghcr.auth.user" in /etc/x.toml',
  ]);
});

t.test('wrong types give key path, expected and actual type', async (t) => {
  t.strictSame(
    problemsOf(
      [
        'log_level = 3',
        'fuse = 3',
        '[http]',
        'max_retries = "8"',
        'dial_timeout_msec = 1.5',
        'min_wait_msec = 1.0',
        'request_timeout_msec = 2024-01-01T00:00:00Z',
        '[background_fetch]',
        'disable = "no"',
        'max_queue_size = [1]',
        '[resolver.host."docker.io"]',
        'mirrors = "m"',
        '[registry.configs]',
        'x = 1',
      ].join('\n'),
    ),
    [
      'key "log_level" in /etc/x.toml: expected string, got integer',
      'key "background_fetch.disable" in /etc/x.toml: expected boolean, got string',
      'key "background_fetch.max_queue_size" in /etc/x.toml: expected integer, got array',
      'key "http.dial_timeout_msec" in /etc/x.toml: expected integer, got float',
      'key "http.request_timeout_msec" in /etc/x.toml: expected integer, got datetime',
      'key "http.max_retries" in /etc/x.toml: expected integer, got string',
      'key "http.min_wait_msec" in /etc/x.toml: expected integer, got float',
      'key "fuse" in /etc/x.toml: expected table, got integer',
      'key "resolver.host.\\"docker.io\\".mirrors" in /etc/x.toml: expected array of tables, got string',
      'key "registry.configs.x" in /etc/x.toml: expected table, got integer',
    ],
  );
});

t.test('out-of-range and malformed values are refused', async (t) => {
  t.strictSame(
    problemsOf(
      [
        'root_path = "relative/dir"',
        'metrics_network = "udp"',
        'mount_timeout_sec = 0',
        '[http]',
        'dial_timeout_msec = -1',
        'max_wait_msec = 10',
        '[blob]',
        'max_concurrent_fetches = 0',
        '[fuse]',
        'attr_timeout = -5',
        'max_read = 100',
        '[cache]',
        'disk_cache_max_bytes = 9007199254740993',
        'directory = "cache"',
        '[content_store]',
        'type = "containerd"',
        '[registry]',
        'config_path = "/etc/containerd/certs.d:certs"',
        '[[resolver.host."docker.io".mirrors]]',
        'host = "https://mirror"',
        '[[resolver.host."docker.io".mirrors]]',
        'insecure = true',
        '[registry.configs."r.io".tls]',
        'key_file = "/k.pem"',
      ].join('\n'),
    ),
    [
      'key "root_path" in /etc/x.toml: must be an absolute path, got "relative/dir"',
      'key "metrics_network" in /etc/x.toml: must be one of "tcp", "unix", got "udp"',
      'key "mount_timeout_sec" in /etc/x.toml: must be >= 1, got 0',
      'key "http.dial_timeout_msec" in /etc/x.toml: must be >= 1, got -1',
      'key "blob.max_concurrent_fetches" in /etc/x.toml: must be >= 1, got 0',
      'key "fuse.attr_timeout" in /etc/x.toml: must be >= 0, got -5',
      'key "fuse.max_read" in /etc/x.toml: must be >= 4096, got 100',
      'key "cache.disk_cache_max_bytes" in /etc/x.toml: must be <= 9007199254740991, got 9007199254740993',
      'key "cache.directory" in /etc/x.toml: must be an absolute path, got "cache"',
      'key "content_store.type" in /etc/x.toml: must be one of "soci", got "containerd"',
      'key "resolver.host.\\"docker.io\\".mirrors[0].host" in /etc/x.toml: must be a host[:port] without a scheme (use insecure = true for http), got "https://mirror"',
      'missing required key "resolver.host.\\"docker.io\\".mirrors[1].host" in /etc/x.toml',
      'key "registry.config_path" in /etc/x.toml: every \':\'-separated entry must be an absolute path, got "certs"',
      'key "http.min_wait_msec" in /etc/x.toml: must be <= http.max_wait_msec (10), got 30',
      'key "registry.configs.\\"r.io\\".tls.key_file" in /etc/x.toml: needs cert_file as well',
    ],
  );
  t.strictSame(problemsOf('metrics_network = "unix"\nmetrics_address = "127.0.0.1:9100"\n'), [
    'key "metrics_address" in /etc/x.toml: must be an absolute socket path with metrics_network "unix", got "127.0.0.1:9100"',
  ]);
  t.strictSame(problemsOf('metrics_address = "localhost"\n'), [
    'key "metrics_address" in /etc/x.toml: must be host:port with metrics_network "tcp", got "localhost"',
  ]);
  t.strictSame(problemsOf('[blob]\nmin_wait_msec = 500\nmax_wait_msec = 400\n'), [
    'key "blob.min_wait_msec" in /etc/x.toml: must be <= blob.max_wait_msec (400), got 500',
  ]);
});

t.test('all problems reported together in one invalid-argument SociError, one line each', async (t) => {
  const text = '[fuse]\natrr_timeout = 1\nentry_timeout = "1"\n[blob]\nmax_concurrent_fetches = 0\n';
  const err = t.throws(() => parseConfig(text, '/etc/x.toml')) as ConfigError;
  t.ok(err instanceof SociError);
  t.equal(err.kind, 'invalid-argument');
  const lines = [
    'key "blob.max_concurrent_fetches" in /etc/x.toml: must be >= 1, got 0',
    'unknown key "fuse.atrr_timeout" in /etc/x.toml',
    'key "fuse.entry_timeout" in /etc/x.toml: expected integer, got string',
  ];
  t.strictSame(err.problems, lines);
  t.equal(err.message, lines.join('\n'));
});

t.test('TOML syntax errors carry file, line and column', async (t) => {
  const dir = await tempDirFor(t);
  const file = join(dir, 'bad.toml');
  await writeFile(file, 'a = 1\n[fuse]\nattr_timeout = \n');
  t.throws(() => loadConfig(file), { kind: 'invalid-argument', message: `${file}:3:16: invalid TOML: invalid value` });
  await writeFile(file, '[fuse]\nattr_timeout = 1\n[fuse]\n');
  t.throws(() => loadConfig(file), {
    kind: 'invalid-argument',
    message: `${file}:3:2: invalid TOML: trying to redefine an already defined table or value`,
  });
});

t.test('credentials never appear in messages', async (t) => {
  const secret = 'c2VjcmV0'; // base64 of "secret": no colon, so it is refused
  const problems = problemsOf(`[registry.configs."r.io".auth]\nauth = "${secret}"\npassword = 12345\n`);
  t.strictSame(problems, [
    'key "registry.configs.\\"r.io\\".auth.password" in /etc/x.toml: expected string, got integer',
    'key "registry.configs.\\"r.io\\".auth.auth" in /etc/x.toml: must be base64 of "user:password" (no ":" found)',
  ]);
  t.notMatch(problems.join('\n'), secret);
  t.notMatch(problems.join('\n'), '12345');
  t.notMatch(renderConfigDocs(), secret);
});

t.test('upstream CamelCase [http] keys are accepted, but not together with snake_case', async (t) => {
  const cfg = parseConfig('[http]\nMaxRetries = 3\nDialTimeoutMsec = 100\n', '/etc/x.toml');
  t.equal(cfg.http.max_retries, 3);
  t.equal(cfg.http.dial_timeout_msec, 100);
  t.equal(cfg.blob.max_retries, 3, 'blob inherits the http value');
  t.strictSame(problemsOf('[http]\nmax_retries = 3\nMaxRetries = 4\n'), [
    'key "http.max_retries" in /etc/x.toml: also given as "http.MaxRetries"; use one spelling',
  ]);
});

t.test('derived defaults: blob inherits http unless set, cache directory follows root', async (t) => {
  const cfg = parseConfig('root_path = "/srv/r"\n[http]\nmax_retries = 2\nmin_wait_msec = 5\n[blob]\nmax_retries = 9\n', 's');
  t.strictSame(
    [cfg.blob.max_retries, cfg.blob.min_wait_msec, cfg.blob.max_wait_msec, cfg.cache.directory],
    [9, 5, 300000, '/srv/r/cache'],
  );
});

t.test('command-line overrides win over the file and are validated as flags', async (t) => {
  const dir = await tempDirFor(t);
  const file = join(dir, 'c.toml');
  await writeFile(file, 'root_path = "/from/file"\nlog_level = "warn"\naddress = "/file.sock"\n');
  const cfg = loadConfig(file, { overrides: { root_path: '/from/flag', log_level: 'debug' } });
  t.strictSame([cfg.root_path, cfg.log_level, cfg.address, cfg.cache.directory], [
    '/from/flag',
    'debug',
    '/file.sock',
    '/from/flag/cache',
  ]);
  t.throws(() => loadConfig(file, { overrides: { log_level: 'loud', address: 'x.sock' } }), {
    kind: 'invalid-argument',
    message: [
      'key "address" in command-line flag --address: must be an absolute path, got "x.sock"',
      'key "log_level" in command-line flag --log-level: must be one of "trace", "debug", "info", "warn", "error", "fatal", got "loud"',
    ].join('\n'),
  });
});

t.test('a host named __proto__ stays an ordinary entry', async (t) => {
  const cfg = parseConfig('[[resolver.host."__proto__".mirrors]]\nhost = "m"\n', 's');
  t.ok(Object.hasOwn(cfg.resolver.host, '__proto__'));
  t.equal(cfg.resolver.host['__proto__'].mirrors[0].host, 'm');
  t.equal(({} as Record<string, unknown>).mirrors, undefined);
});

t.test('docs table lists every key with type, default and description', async (t) => {
  const docs = renderConfigDocs();
  const entries = schemaEntries(CONFIG_SCHEMA);
  t.equal(entries.length, 58);
  const rows = docs.split('\n').filter((l) => l.startsWith('| `'));
  t.equal(rows.length, entries.length);
  for (const { path } of entries) t.ok(rows.some((r) => r.startsWith(`| \`${path}\` |`)), path);
  t.ok(rows.includes('| `fuse.attr_timeout` | integer >= 0 | `3600` | upstream | Seconds the kernel caches file attributes. Layers are immutable, so the default is long (upstream: 1). |'));
  t.ok(rows.includes('| `metrics_network` | "tcp" \\| "unix" | `"tcp"` | upstream | Network of `metrics_address`. |'));
  t.ok(rows.includes('| `cache.disk_cache_max_bytes` | integer >= 1 | `10737418240` (10 GiB) | ours | Cap on the on-disk span cache across all layers; least recently used spans are evicted. |'));
  t.ok(rows.includes('| `resolver.host.<host>.mirrors[].host` | string | - | upstream | Mirror host[:port], no scheme. Required. |'));
  t.match(docs, /Also accepted as `MaxRetries`/);
});

t.test('example-config.toml: loads to the defaults and mentions every key', async (t) => {
  t.strictSame(loadConfig(EXAMPLE), DEFAULTS);
  const text = await readFile(EXAMPLE, 'utf8');
  // Commented-out settings are lines like "# key = value" or "# [table]"; prose never starts that way.
  const uncommented = text.replace(/^# (?=\[|[a-z_]+ = )/gm, '');
  const cfg = parseConfig(uncommented, EXAMPLE);
  t.equal(cfg.resolver.host['docker.io'].mirrors[0].host, 'mirror.example.com:5000');
  t.equal(cfg.registry.configs['registry.example.com'].tls.insecure_skip_verify, false);
  const present = presentPaths(CONFIG_SCHEMA, parse(uncommented) as Record<string, unknown>);
  t.strictSame(present.sort(), schemaEntries(CONFIG_SCHEMA).map((e) => e.path).sort());
});
