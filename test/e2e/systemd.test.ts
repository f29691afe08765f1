import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmod, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { tempDirFor } from '../helpers/tmp.js';
import { startService, waitFor } from '../helpers/process.js';
import { HUGE_PAGE_MALLOC } from '../../daemon/huge-page-malloc.js';

/** The project root, from dist/test/e2e. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UNIT = join(ROOT, 'systemd', 'soci-snapshotter-grpc.service');
const CONTAINERD_EXAMPLE = join(ROOT, 'systemd', 'containerd-config.toml.example');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** section -> key -> values (a key may repeat, e.g. After=). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = new Map();
      out.set(head[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`unit line outside a section or without '=': ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

t.test('unit file has the required settings', async (t) => {
  const unit = parseUnit(await readFile(UNIT, 'utf8'));
  const get = (s: string, k: string): string[] => unit.get(s)?.get(k) ?? [];
  t.same(get('Unit', 'Before'), ['containerd.service']);
  t.same(get('Unit', 'After').join(' ').split(/\s+/).sort(), ['local-fs.target', 'network-online.target']);
  t.same(get('Service', 'Type'), ['exec']);
  t.same(get('Service', 'ExecStart'), ['/usr/local/bin/soci-snapshotter-grpc']);
  t.same(get('Service', 'Restart'), ['on-failure']);
  t.same(get('Service', 'KillMode'), ['process']);
  t.same(get('Service', 'LimitNOFILE'), ['1048576']);
  t.ok(Number(get('Service', 'TimeoutStopSec')[0]) > 10, 'stop timeout above the daemon\'s 10 s drain');
  t.same(get('Install', 'WantedBy'), ['multi-user.target']);
  t.same(get('Service', 'Environment'), [`GLIBC_TUNABLES=${HUGE_PAGE_MALLOC}`], 'the malloc tunable the test and bench helpers start the daemon with');
});

t.test('systemd-analyze verify accepts the unit', async (t) => {
  t.ok(has('systemd-analyze'), 'systemd-analyze installed (Debian package systemd)');
  const dir = await tempDirFor(t, 'soci-unit-');
  // verify insists that ExecStart exists and is executable; the real path is not installed here.
  const exe = join(dir, 'soci-snapshotter-grpc');
  await writeFile(exe, '#!/bin/sh\n');
  await chmod(exe, 0o755);
  const text = (await readFile(UNIT, 'utf8')).replace('/usr/local/bin/soci-snapshotter-grpc', exe);
  const unitPath = join(dir, 'soci-snapshotter-grpc.service');
  await writeFile(unitPath, text);
  const r = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  // verify exits 0 on unparseable settings and only warns: any output is a finding.
  t.equal(r.stderr, '');
  const broken = join(dir, 'broken.service');
  await writeFile(broken, text.replace('KillMode=process', 'KillMode=bogus'));
  const rb = spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8' });
  t.match(rb.stderr, /kill mode/i, 'a bad setting would be reported');
});

interface CriSection { snapshotter: string; disable_snapshot_annotations: boolean }
interface ContainerdToml {
  version: number;
  proxy_plugins: Record<string, { type: string; address: string }>;
  plugins: Record<string, { containerd: CriSection }>;
}

function checkContainerdConfig(t: Test, cfg: ContainerdToml): void {
  t.equal(cfg.version, 2);
  t.same(cfg.proxy_plugins.soci, { type: 'snapshot', address: '/run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock' });
  const cri = cfg.plugins['io.containerd.grpc.v1.cri'].containerd;
  t.equal(cri.snapshotter, 'soci');
  t.equal(cri.disable_snapshot_annotations, false);
}

t.test('containerd example config', async (t) => {
  checkContainerdConfig(t, parseToml(await readFile(CONTAINERD_EXAMPLE, 'utf8')) as unknown as ContainerdToml);
});

t.test('containerd itself loads the example config', async (t) => {
  const r = spawnSync('containerd', ['--config', CONTAINERD_EXAMPLE, 'config', 'dump'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  checkContainerdConfig(t, parseToml(r.stdout) as unknown as ContainerdToml);
});

t.test('install.sh into a staging root, twice; the installed daemon starts', async (t) => {
  const dest = await tempDirFor(t, 'soci-install-');
  const run = (): ReturnType<typeof spawnSync> =>
    spawnSync('bash', [join(ROOT, 'scripts', 'install.sh'), '--no-build'], { cwd: ROOT, env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
  let r = run();
  t.equal(r.status, 0, String(r.stderr));
  const app = join(dest, 'usr/local/lib/soci-snapshotter-node');
  t.equal(await readlink(join(dest, 'usr/local/bin/soci-snapshotter-grpc')), '/usr/local/lib/soci-snapshotter-node/dist/daemon/main.js');
  t.equal(await readlink(join(dest, 'usr/local/bin/soci')), '/usr/local/lib/soci-snapshotter-node/dist/cli/main.js');
  t.equal((await stat(join(app, 'dist/daemon/main.js'))).mode & 0o111, 0o111, 'daemon entry executable');
  t.equal(await readFile(join(dest, 'etc/systemd/system/soci-snapshotter-grpc.service'), 'utf8'), await readFile(UNIT, 'utf8'));
  const config = join(dest, 'etc/soci-snapshotter-grpc/config.toml');
  t.equal(await readFile(config, 'utf8'), await readFile(join(ROOT, 'config/example-config.toml'), 'utf8'));
  t.notOk(existsSync(join(app, 'node_modules/tap')), 'dev dependencies pruned');
  t.notOk(existsSync(join(app, 'dist/test')), 'tests not installed');

  await writeFile(config, 'log_level = "debug"\n');
  r = run();
  t.equal(r.status, 0, String(r.stderr));
  t.equal(await readFile(config, 'utf8'), 'log_level = "debug"\n', 'second run keeps the config');
  t.match(String(r.stdout), /kept existing/);

  const work = await tempDirFor(t, 'soci-install-run-');
  const daemon = startService(join(app, 'dist/daemon/main.js'),
    ['--root', join(work, 'root'), '--address', join(work, 'd.sock'), '--config', config]);
  t.teardown(() => daemon.kill());
  await waitFor(daemon, 'installed daemon', async () => daemon.logs().includes('soci-snapshotter-grpc serving'));
  await daemon.kill();
  t.equal(daemon.child.exitCode, 0, daemon.logs().slice(-2000));
});
