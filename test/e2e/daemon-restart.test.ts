/**
 * Daemon restarts with a lazily pulled image in use: kill -9 while a container runs (a new
 * container then reads every file of the lazy layer; what the running one sees is recorded),
 * SIGTERM (the daemon unmounts its layers and re-mounts them on start), and a start while the
 * registry is down (refused, or with allow_invalid_mounts_on_restart served from the cache).
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { daemonMain, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { execCapture, execOk } from '../helpers/exec.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { mountsUnder } from '../helpers/mounts.js';
import { soci } from '../helpers/soci-cli.js';
import { BIG_LAYER_DIR, buildLazyImage, logRecords, pushLazyImage, type LazyImage } from '../helpers/lazy-image.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** Read before the kill (cached in the running container's page cache) and never before it. */
const READ_BEFORE = '/usr/include/stdio.h';
const UNREAD = '/usr/include/zlib.h';
const FAST_FAIL = '[http]\nmax_retries = 0\n';

let dir: string;
let root: string;
let address: string;
let reg: Registry;
let ctd: Containerd;
let daemon: TestDaemon | undefined;
let img: LazyImage;

t.before(async () => {
  dir = await makeTempDir('soci-restart-');
  root = join(dir, 'daemon-root');
  address = join(dir, 'run', 'soci.sock');
  reg = await startRegistry();
  img = await pushLazyImage(reg, dir, 'restart/app', await buildLazyImage(dir));
  daemon = await startDaemon({ root, address });
  ctd = await startContainerd({ proxyPlugins: { soci: address } });
});

t.teardown(async () => {
  await ctd?.stop().catch((e: unknown) => console.error(e));
  await daemon?.stop().catch((e: unknown) => console.error(e));
  await reg?.stop().catch((e: unknown) => console.error(e));
  await removeDir(dir);
});

async function ctrOk(args: string[]): Promise<string> {
  const res = await ctd.ctr(args);
  if (res.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${res.code}: ${res.stderr}\ndaemon logs:\n${daemon?.logs().slice(-3000)}`);
  return res.stdout;
}

/** containerd's proxy connection redials on its own; the first call that passes proves it. */
async function waitForContainerd(t: Test): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await ctd.ctr(['snapshots', '--snapshotter', 'soci', 'ls']);
    if (res.code === 0) return;
    last = res.stderr;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.fail(`containerd did not reach the restarted daemon: ${last}`);
}

async function hostSum(path: string): Promise<string> {
  return sha(await readFile(path));
}

/** `sha256sum` lines (hash, two spaces, path) as path -> hash. */
function sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) out.set(m[2], m[1]);
  }
  return out;
}

t.test('kill -9 while a container runs: a new container reads every file; the running one is recorded', async (t) => {
  const rp = await soci(img.builder, ['image', 'rpull', img.ref], ['--address', ctd.address]);
  t.equal(rp.code, 0, rp.stderr);
  t.match(rp.stdout, /lazy/, rp.stdout);
  await ctrOk(['run', '-d', '--snapshotter', 'soci', img.ref, 'c1', 'sleep', '600']);
  const before = await ctd.ctr(['tasks', 'exec', '--exec-id', 'e0', 'c1', 'sha256sum', READ_BEFORE]);
  t.equal(before.stdout.split(/\s+/)[0], await hostSum(READ_BEFORE), 'c1 reads through the lazy layer before the kill');

  await daemon!.kill9();
  t.ok((await mountsUnder(root)).some((m) => m.fsType.startsWith('fuse')), 'kill -9 leaves the dead FUSE mount behind');
  daemon = await startDaemon({ root, address });
  await waitForContainerd(t);
  const remount = logRecords(daemon.logs(), 're-mounted lazy layers');
  t.same(remount.map((r) => [r.mounted, r.unreachable, r.failed]), [[1, 0, 0]], 'the lazy layer is mounted again before serving');
  t.match(daemon.logs(), /cleared a stale FUSE mount/);

  // The running container's overlay still points at the dead connection's superblock.
  const unread = await ctd.ctr(['tasks', 'exec', '--exec-id', 'e1', 'c1', 'sha256sum', UNREAD]);
  const reread = await ctd.ctr(['tasks', 'exec', '--exec-id', 'e2', 'c1', 'sha256sum', READ_BEFORE]);
  t.comment(`c1 after the restart, unread file: exit ${unread.code} ${JSON.stringify(unread.stdout + unread.stderr)}`);
  t.comment(`c1 after the restart, file read before: exit ${reread.code} ${JSON.stringify(reread.stdout + reread.stderr)}`);
  t.not(unread.code, 0, 'a file c1 never read cannot be read after the restart');
  t.match(unread.stderr, /Transport endpoint is not connected/, 'the old FUSE connection answers ENOTCONN');
  // Layer mounts answer OPEN with ENOSYS (no-open.patch), so opening a file sends nothing to
  // the dead connection: a file whose pages are still in the kernel's page cache reads right;
  // once they are evicted, the read goes to the dead connection like an unread file.
  if (reread.code === 0) {
    t.equal(reread.stdout.split(/\s+/)[0], await hostSum(READ_BEFORE), 'a file c1 read before still reads right from the page cache');
  } else {
    t.match(reread.stderr, /Transport endpoint is not connected/, 'a file c1 read before, its pages evicted, goes to the dead connection');
  }

  const script = `cd / && find ${BIG_LAYER_DIR} -type f | xargs sha256sum`;
  const inside = sums(await ctrOk(['run', '--rm', '--snapshotter', 'soci', img.ref, 'c2', 'sh', '-c', script]));
  const host = sums((await execOk('sh', ['-c', script])).stdout);
  t.ok(host.size > 1000, `${host.size} regular files in /${BIG_LAYER_DIR}`);
  t.equal(inside.size, host.size, 'the new container sees every regular file');
  const wrong = [...host].filter(([p, h]) => inside.get(p) !== h).map(([p]) => p);
  t.same(wrong.slice(0, 10), [], `every file has the right content (${wrong.length} differ)`);

  await ctd.ctr(['tasks', 'kill', '-s', 'SIGKILL', 'c1']);
  await new Promise((r) => setTimeout(r, 500));
  await ctd.ctr(['tasks', 'delete', '-f', 'c1']);
  await ctrOk(['containers', 'delete', 'c1']);
});

t.test('SIGTERM unmounts every layer; the next start re-mounts them and a new container works', async (t) => {
  await daemon!.service.kill(15_000);
  t.equal(daemon!.service.child.exitCode, 0, 'clean exit on SIGTERM');
  t.same((await mountsUnder(root)).map((m) => m.mountPoint), [], 'nothing stays mounted under the root');
  await daemon!.stop();
  daemon = await startDaemon({ root, address });
  const remount = logRecords(daemon.logs(), 're-mounted lazy layers');
  t.same(remount.map((r) => [r.mounted, r.unreachable, r.failed]), [[1, 0, 0]]);
  await waitForContainerd(t);
  const out = await ctrOk(['run', '--rm', '--snapshotter', 'soci', img.ref, 'c3', 'sha256sum', UNREAD]);
  t.equal(out.split(/\s+/)[0], await hostSum(UNREAD));
});

t.test('registry down at start: refused by default; allowed with allow_invalid_mounts_on_restart', async (t) => {
  await daemon!.stop();
  daemon = undefined;
  const layer = img.image.layers[1].digest;
  await reg.stop();

  const refused = await execCapture(process.execPath, [daemonMain(), '--root', root, '--address', address, '--config', await configFile('refuse.toml', FAST_FAIL)], { timeoutMs: 60_000 });
  t.equal(refused.code, 1, 'the daemon exits with status 1');
  const lastLine = refused.stderr.trim().split('\n').at(-1) ?? '';
  t.match(lastLine, `soci-snapshotter-grpc: source of lazy layer ${layer} (${reg.host}/restart/app) cannot be reached`);
  t.same((await mountsUnder(root)).map((m) => m.mountPoint), [], 'a refused start leaves nothing mounted');

  const metricsSock = join(dir, 'metrics.sock');
  daemon = await startDaemon({ root, address, config: `metrics_network = "unix"\nmetrics_address = "${metricsSock}"\n[snapshotter]\nallow_invalid_mounts_on_restart = true\n${FAST_FAIL}` });
  const remount = logRecords(daemon.logs(), 're-mounted lazy layers');
  t.same(remount.map((r) => [r.mounted, r.unreachable, r.failed]), [[1, 1, 0]], 'mounted, reported as unreachable');
  const reported = logRecords(daemon.logs(), 'lazy layer re-mounted but its source is unreachable; uncached reads fail until it is back');
  t.equal(reported.length, 1);
  t.equal(reported[0]?.layer, layer);
  const metrics = await httpGetUnix(metricsSock, '/metrics');
  for (const [result, n] of [['mounted', 0], ['unreachable', 1], ['failed', 0]] as const) {
    t.match(metrics, new RegExp(`^soci_restart_remounts\\{result="${result}"\\} ${n}$`, 'm'), `metrics: ${result} ${n}`);
  }
  await waitForContainerd(t);
  // Every span was read by c2 above: the on-disk cache serves the layer while the registry is away.
  const out = await ctrOk(['run', '--rm', '--snapshotter', 'soci', img.ref, 'c4', 'sha256sum', UNREAD]);
  t.equal(out.split(/\s+/)[0], await hostSum(UNREAD));
  const after = await httpGetUnix(metricsSock, '/metrics');
  for (const op of ['getattr', 'read']) {
    const m = new RegExp(`^soci_fuse_ops_total\\{op="${op}"\\} (\\d+)$`, 'm').exec(after);
    t.ok(m && Number(m[1]) > 0, `metrics: FUSE ${op} ops counted (${m?.[1]})`);
  }
});

function httpGetUnix(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

async function configFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
