/**
 * The snapshotter daemon for tests: `node dist/daemon/main.js` as a child process with a temp
 * root and socket. stop() sends SIGTERM (then SIGKILL) to its PID, unmounts anything left under
 * the root and removes the temp dir unless a root was given by the caller.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { makeTempDir, removeDir } from './tmp.js';
import { startService, waitFor, type Service } from './process.js';
import { unmountAllUnder } from './mounts.js';
import { withHugePageMalloc } from '../../daemon/huge-page-malloc.js';

/** Logged by the daemon once it serves (daemon/server.ts). */
const READY_MESSAGE = 'soci-snapshotter-grpc serving';

export interface DaemonOptions {
  /** Root dir to use (kept on stop, so a restart can reuse it); default: a temp dir. */
  root?: string;
  /** Socket path; default: <temp dir>/soci.sock. */
  address?: string;
  /** TOML config text, written to a file and passed with --config. */
  config?: string;
  logLevel?: string;
}

export interface TestDaemon {
  root: string;
  address: string;
  service: Service;
  logs(): string;
  /** SIGTERM then SIGKILL after graceMs; unmounts leftovers under root; removes temp dirs it made. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL (to test recovery): root, mounts and socket stay; the helper's temp dir goes if nothing of those is in it. */
  kill9(): Promise<void>;
}

/** dist/daemon/main.js, from this helper's place in dist/test/helpers. */
export function daemonMain(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const main = join(here, '..', '..', 'daemon', 'main.js');
  if (!existsSync(main)) throw new Error(`daemon entry point ${main} not found; run npx tsc first`);
  return main;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const dir = await makeTempDir('soci-daemon-');
  const root = opts.root ?? join(dir, 'root');
  const address = opts.address ?? join(dir, 'soci.sock');
  const args = [daemonMain(), '--root', root, '--address', address, '--log-level', opts.logLevel ?? 'debug'];
  if (opts.config !== undefined) {
    const configPath = join(dir, 'config.toml');
    await writeFile(configPath, opts.config);
    args.push('--config', configPath);
  }
  // As the systemd unit starts it.
  const service = startService(process.execPath, args, withHugePageMalloc(process.env));
  const cleanup = async (): Promise<void> => {
    const failures = await unmountAllUnder(root);
    await removeDir(dir);
    if (failures.length > 0) throw new Error(`daemon stop: could not unmount ${failures.join('; ')}`);
  };
  try {
    // The log line tells this daemon from another one already answering on the same socket.
    await waitFor(service, `soci-snapshotter-grpc at ${address}`,
      async () => service.logs().includes(READY_MESSAGE) && socketAnswers(address));
  } catch (e) {
    await service.kill(1000);
    await cleanup().catch(() => undefined);
    throw e;
  }
  return {
    root,
    address,
    service,
    logs: service.logs,
    stop: async (graceMs = 5000) => {
      await service.kill(graceMs);
      await cleanup();
    },
    kill9: async () => {
      const pid = service.child.pid;
      if (pid === undefined || service.child.exitCode !== null || service.child.signalCode !== null) return;
      const exited = new Promise<void>((r) => service.child.once('exit', () => r()));
      process.kill(pid, 'SIGKILL');
      await exited;
      if (opts.root !== undefined && opts.address !== undefined) await removeDir(dir);
    },
  };
}
