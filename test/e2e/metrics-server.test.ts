import t, { type Test } from 'tap';
import { request } from 'node:http';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { DaemonMetrics } from '../../daemon/metrics.js';
import { parseTcpAddress, startMetricsServer, type MetricsServer } from '../../daemon/metrics-server.js';
import { SnapshotsClient } from '../../fetcher/containerd-client.js';
import { loadProtos, serviceConstructor } from '../../fetcher/proto-loader.js';
import { SociError } from '../../errors/errors.js';
import { daemonMain, startDaemon } from '../helpers/daemon.js';
import { startService } from '../helpers/process.js';
import { tempDirFor } from '../helpers/tmp.js';

const log = pino({ level: 'silent' });

interface Reply { status: number; type: string; body: string }

type Target = { socketPath: string } | { host: string; port: number };

function targetOf(server: MetricsServer, network: 'tcp' | 'unix'): Target {
  if (network === 'unix') return { socketPath: server.address };
  const { host, port } = parseTcpAddress(server.address);
  return { host: host ?? '127.0.0.1', port };
}

function get(target: Target, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes and returns whatever comes back before the server closes the connection. */
function raw(target: Target, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = 'socketPath' in target ? connect(target.socketPath) : connect(target.port, target.host);
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
    s.on('connect', () => s.write(bytes));
    s.setTimeout(5000, () => s.destroy(new Error('raw request: no close within 5 s')));
  });
}

function valueOf(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function exercise(t: Test, network: 'tcp' | 'unix', address: string): Promise<void> {
  const metrics = new DaemonMetrics({ defaultMetrics: false });
  const server = await startMetricsServer(metrics, { address, network }, log);
  t.teardown(() => server.close());
  const target = targetOf(server, network);
  metrics.layerMounted('lazy');
  metrics.spanCacheHooks().miss();
  let r = await get(target, '/metrics');
  t.equal(r.status, 200);
  t.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(valueOf(r.body, 'soci_layer_mounts_total{outcome="lazy"}'), 1);
  t.equal(valueOf(r.body, 'soci_span_cache_misses_total'), 1);
  t.match(r.body, /^# HELP soci_layer_mounts_total /m);

  t.equal((await get(target, '/metrics?x=1')).status, 200, 'query string ignored');
  r = await get(target, '/');
  t.equal(r.status, 404);
  t.equal(r.body, 'not found\n');
  t.equal((await get(target, '/metrics/extra')).status, 404);
  t.equal((await get(target, '/metrics', 'POST')).status, 405);
  const head = await get(target, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');

  const garbage = await raw(target, 'NOT HTTP AT ALL \x00\x01\x02\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 /, 'garbage gets 400');
  const huge = await raw(target, `GET /metrics HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(huge, /^HTTP\/1\.1 (400|431) /, 'oversized headers refused');
  // A client that stops mid-request holds only its own connection.
  const stalled = 'socketPath' in target ? connect(target.socketPath) : connect(target.port, target.host);
  await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
  stalled.write('GET /metr');
  t.equal((await get(target, '/metrics')).status, 200, 'served while another request stalls');
  stalled.destroy();

  metrics.layerMounted('lazy');
  r = await get(target, '/metrics');
  t.equal(r.status, 200, 'still serving after bad requests');
  t.equal(valueOf(r.body, 'soci_layer_mounts_total{outcome="lazy"}'), 2);

  await server.close();
  await server.close();
  if (network === 'unix') t.notOk(existsSync(address), 'socket removed on close');
  await t.rejects(get(target, '/metrics'), 'closed server refuses');
}

t.test('tcp on 127.0.0.1 with a kernel-chosen port', async (t) => {
  await exercise(t, 'tcp', '127.0.0.1:0');
});

t.test('unix socket, replacing a stale one', async (t) => {
  const dir = await tempDirFor(t, 'soci-metrics-');
  const path = join(dir, 'sub', 'metrics.sock');
  // A socket left by a process killed with -9 (Node removes its own sockets on a clean exit).
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `require('node:fs').mkdirSync(${JSON.stringify(join(dir, 'sub'))});` +
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  t.ok((await lstat(path)).isSocket(), 'stale socket exists');
  await exercise(t, 'unix', path);
});

t.test('refuses a live socket, a regular file and a bad address', async (t) => {
  const dir = await tempDirFor(t, 'soci-metrics-');
  const metrics = new DaemonMetrics({ defaultMetrics: false });
  const path = join(dir, 'm.sock');
  const first = await startMetricsServer(metrics, { address: path, network: 'unix' }, log);
  t.teardown(() => first.close());
  await t.rejects(startMetricsServer(metrics, { address: path, network: 'unix' }, log), /another process is serving on/);
  t.equal((await get({ socketPath: path }, '/metrics')).status, 200, 'first server unharmed');
  const file = join(dir, 'file');
  await writeFile(file, 'keep me');
  await t.rejects(startMetricsServer(metrics, { address: file, network: 'unix' }, log), /is not a socket/);
  await t.rejects(startMetricsServer(metrics, { address: 'localhost', network: 'tcp' }, log), /metrics_address "localhost" is not host:port/);
  await t.rejects(startMetricsServer(metrics, { address: '127.0.0.1:70000', network: 'tcp' }, log), /is not host:port/);
  const tcp = await startMetricsServer(metrics, { address: '127.0.0.1:0', network: 'tcp' }, log);
  t.teardown(() => tcp.close());
  await t.rejects(startMetricsServer(metrics, { address: tcp.address, network: 'tcp' }, log), /metrics: cannot listen on tcp 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  t.same(parseTcpAddress(':9100'), { host: undefined, port: 9100 });
  t.same(parseTcpAddress('[::1]:9100'), { host: '::1', port: 9100 });
});

t.test('the daemon serves metrics_address and counts its gRPC calls', async (t) => {
  const dir = await tempDirFor(t, 'soci-metrics-daemon-');
  const sock = join(dir, 'metrics.sock');
  const daemon = await startDaemon({ config: `metrics_address = "${sock}"\nmetrics_network = "unix"\n` });
  t.teardown(() => daemon.stop());
  const deadline = Date.now() + 10_000;
  while (!daemon.logs().includes('metrics serving') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const Ctor = serviceConstructor(loadProtos(), 'containerd.services.snapshots.v1.Snapshots');
  const client = new Ctor(`unix://${daemon.address}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const sn = new SnapshotsClient(client, 'soci', () => new grpc.Metadata());
  for (let i = 0; i < 2; i++) {
    const err = await sn.stat('no-such-key').then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof SociError && err.kind === 'not-found', 'Stat of a missing key is NOT_FOUND');
  }
  const r = await get({ socketPath: sock }, '/metrics');
  t.equal(r.status, 200);
  t.equal(valueOf(r.body, 'soci_grpc_requests_total{method="Stat",code="NOT_FOUND"}'), 2);
  t.equal(valueOf(r.body, 'soci_grpc_request_duration_seconds_count{method="Stat"}'), 2);
  t.ok((valueOf(r.body, 'soci_process_resident_memory_bytes') ?? 0) > 1 << 20, 'default process metrics present');
  await daemon.stop();
  t.notOk(existsSync(sock), 'metrics socket removed on SIGTERM');
});

t.test('a metrics address that cannot be served stops the daemon with an error', async (t) => {
  const dir = await tempDirFor(t, 'soci-metrics-daemon-');
  const metrics = new DaemonMetrics({ defaultMetrics: false });
  const taken = await startMetricsServer(metrics, { address: '127.0.0.1:0', network: 'tcp' }, log);
  t.teardown(() => taken.close());
  const config = join(dir, 'config.toml');
  await writeFile(config, `metrics_address = "${taken.address}"\n`);
  const address = join(dir, 'd.sock');
  const daemon = startService(process.execPath, [daemonMain(), '--root', join(dir, 'root'), '--address', address, '--config', config]);
  t.teardown(() => daemon.kill());
  const code = daemon.child.exitCode ?? await new Promise<number | null>((resolve) => daemon.child.once('exit', (c) => resolve(c)));
  t.equal(code, 1);
  t.match(daemon.logs(), new RegExp(`metrics: cannot listen on tcp ${taken.address.replace(/\./g, '\\.')}: .*EADDRINUSE`));
  t.notOk(existsSync(address), 'snapshots socket removed again');
});
