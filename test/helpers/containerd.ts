/**
 * A real containerd for tests: its own root, state, sockets and runc root in a temp dir, the
 * overlayfs snapshotter, optional proxy snapshotter plugins. stop() removes every task,
 * the daemon, leftover shims and mounts, and the temp dir.
 */
import { readdir, readFile, rmdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execCapture, type ExecResult } from './exec.js';
import { makeTempDir, removeDir } from './tmp.js';
import { pidAlive, startService, waitFor } from './process.js';
import { unmountAllUnder } from './mounts.js';

export const CONTAINERD_BIN = '/usr/bin/containerd';
export const CTR_BIN = '/usr/bin/ctr';

export interface ContainerdOptions {
  /** Proxy snapshotter plugins: name -> unix socket path. */
  proxyPlugins?: Record<string, string>;
  /** Snapshotter for the CRI plugin (its default is overlayfs). */
  criSnapshotter?: string;
  /** Namespace ctr() uses; default "default". */
  namespace?: string;
  /** Appended to config.toml verbatim (new tables only). */
  extraToml?: string;
  /** containerd's log level; default "info". */
  logLevel?: string;
}

export interface Containerd {
  address: string;
  root: string;
  state: string;
  configPath: string;
  namespace: string;
  /** The runc state root used for `ctr run` (passed as --runc-root by ctr()). */
  runcRoot: string;
  logs(): string;
  /** ctr against this daemon and namespace; `run` gets --runc-root. Never throws for exit codes. */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number; input?: string }): Promise<ExecResult>;
  stop(): Promise<void>;
}

const DISABLED = ['aufs', 'zfs', 'btrfs', 'devmapper'].map((s) => `"io.containerd.snapshotter.v1.${s}"`);

export function containerdConfig(dir: string, opts: ContainerdOptions): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    'version = 2',
    `root = ${q(join(dir, 'root'))}`,
    `state = ${q(join(dir, 'state'))}`,
    `disabled_plugins = [${DISABLED.join(', ')}]`,
    '[grpc]', `  address = ${q(join(dir, 'containerd.sock'))}`,
    '[ttrpc]', `  address = ${q(join(dir, 'containerd.sock.ttrpc'))}`,
    '[debug]', `  address = ${q(join(dir, 'debug.sock'))}`, `  level = ${q(opts.logLevel ?? 'info')}`,
    '[plugins."io.containerd.internal.v1.opt"]', `  path = ${q(join(dir, 'opt'))}`,
    '[plugins."io.containerd.runtime.v1.linux"]', `  runtime_root = ${q(join(dir, 'runc-v1'))}`,
    '[plugins."io.containerd.grpc.v1.cri"]', '  stream_server_port = "0"',
    '[plugins."io.containerd.grpc.v1.cri".cni]', `  conf_dir = ${q(join(dir, 'cni', 'net.d'))}`, `  bin_dir = ${q(join(dir, 'cni', 'bin'))}`,
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    `  snapshotter = ${q(opts.criSnapshotter ?? 'overlayfs')}`,
    '  disable_snapshot_annotations = false',
    '  default_runtime_name = "runc"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]', '  runtime_type = "io.containerd.runc.v2"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]', `  Root = ${q(join(dir, 'runc'))}`,
  ];
  const proxies = Object.entries(opts.proxyPlugins ?? {});
  if (proxies.length > 0) lines.push('[proxy_plugins]');
  for (const [name, socket] of proxies) {
    lines.push(`  [proxy_plugins.${q(name)}]`, '    type = "snapshot"', `    address = ${q(socket)}`);
  }
  if (opts.extraToml) lines.push(opts.extraToml);
  return `${lines.join('\n')}\n`;
}

async function ctrRaw(address: string, runcRoot: string, namespace: string, args: string[], timeoutMs: number, input?: string): Promise<ExecResult> {
  const extra = args[0] === 'run' ? ['run', '--runc-root', runcRoot, ...args.slice(1)] : args;
  return execCapture(CTR_BIN, ['--address', address, '--namespace', namespace, ...extra], { timeoutMs, input });
}

async function lines(p: Promise<ExecResult>): Promise<string[]> {
  const res = await p;
  return res.code === 0 ? res.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/** Kills and deletes every task and container in every namespace, so no shim or mount stays. */
async function removeAllTasks(address: string, runcRoot: string): Promise<string[]> {
  const run = (ns: string, args: string[]): Promise<ExecResult> => ctrRaw(address, runcRoot, ns, args, 20000);
  const namespaces = await lines(run('default', ['namespaces', 'ls', '-q']));
  for (const ns of namespaces) {
    for (const line of (await lines(run(ns, ['tasks', 'ls']))).slice(1)) {
      const id = line.split(/\s+/)[0];
      await run(ns, ['tasks', 'kill', '-a', '-s', 'SIGKILL', id]);
      await run(ns, ['tasks', 'delete', '-f', id]);
    }
    for (const id of await lines(run(ns, ['containers', 'ls', '-q']))) await run(ns, ['containers', 'delete', id]);
  }
  return namespaces;
}

/** PIDs of shims started for this daemon: their command line names its socket. */
async function shimPids(address: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv[0]?.includes('containerd-shim') && argv.includes(address)) pids.push(Number(entry));
  }
  return pids;
}

/** ctr run leaves an empty per-namespace cgroup in each v1 hierarchy; rmdir only removes empty ones. */
async function removeEmptyCgroups(namespaces: string[]): Promise<void> {
  const hierarchies = await readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  for (const h of hierarchies) {
    for (const ns of namespaces) await rmdir(join('/sys/fs/cgroup', h, ns)).catch(() => undefined);
  }
}

export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const dir = await makeTempDir('soci-containerd-');
  const address = join(dir, 'containerd.sock');
  const runcRoot = join(dir, 'runc');
  const namespace = opts.namespace ?? 'default';
  const configPath = join(dir, 'config.toml');
  await mkdir(join(dir, 'cni', 'net.d'), { recursive: true });
  await writeFile(configPath, containerdConfig(dir, opts));
  const service = startService(CONTAINERD_BIN, ['--config', configPath]);

  const stop = async (): Promise<void> => {
    const namespaces = service.child.exitCode === null ? await removeAllTasks(address, runcRoot) : [];
    await service.kill(3000);
    for (const pid of await shimPids(address)) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    const failures = await unmountAllUnder(dir);
    await removeEmptyCgroups(namespaces);
    await removeDir(dir);
    if (failures.length > 0) throw new Error(`containerd stop: could not unmount ${failures.join('; ')}`);
  };

  try {
    await waitFor(service, `containerd at ${address}`, async () => (await ctrRaw(address, runcRoot, namespace, ['version'], 2000)).code === 0);
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return {
    address,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    configPath,
    namespace,
    runcRoot,
    logs: service.logs,
    ctr: (args, o = {}) => ctrRaw(address, runcRoot, o.namespace ?? namespace, args, o.timeoutMs ?? 120000, o.input),
    stop,
  };
}
