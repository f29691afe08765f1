/**
 * The daemon's process-level pieces: the unix socket (parent dirs created, a stale socket
 * replaced but a live daemon never displaced, mode 0600), the grpc-js server, and an orderly
 * shutdown (drain, then force, then close the db).
 */
import * as grpc from '@grpc/grpc-js';
import { lstat, mkdir, chmod, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { failedPrecondition, unavailable } from '../errors/errors.js';
import type { Config } from '../config/types.js';
import { overlayBaseOptions } from './mounts.js';
import { SnapshotStore } from './snapshot-store.js';
import { Snapshotter, type RemotePreparer } from './snapshotter.js';
import { SnapshotsService, snapshotsServiceDefinition } from './snapshots-service.js';
import type { DaemonMetrics } from './metrics.js';
import { hugePageMalloc } from './huge-page-malloc.js';

export const METADATA_DB = join('snapshots', 'metadata.db');

export interface DaemonHooks {
  /** Builds the remote preparer once the store exists (e.g. to re-mount remote snapshots first). */
  remote?: (sn: Snapshotter) => Promise<RemotePreparer>;
  /** Where the daemon's Prometheus series go (gRPC calls here; the caller wires the fs/ hooks). */
  metrics?: DaemonMetrics;
}

export interface Daemon {
  readonly snapshotter: Snapshotter;
  readonly address: string;
  /** Stops accepting calls, waits up to graceMs for running ones, then closes everything. */
  stop(graceMs?: number): Promise<void>;
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const done = (v: boolean): void => {
      sock.destroy();
      resolve(v);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

/** Makes `path` free for a new socket: removes a stale one, refuses a live one or a non-socket. */
export async function claimSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw failedPrecondition(`socket path ${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw failedPrecondition(`another process is serving on ${path}; refusing to start a second daemon`);
  await unlink(path);
}

function bind(server: grpc.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(unavailable(`cannot listen on ${path}: ${err.message}`, err));
      else resolve();
    });
  });
}

async function listen(server: grpc.Server, path: string): Promise<void> {
  await claimSocketPath(path);
  // The socket must never be reachable by others, not even between bind and chmod.
  const old = process.umask(0o177);
  try {
    await bind(server, path);
  } finally {
    process.umask(old);
  }
  await chmod(path, 0o600);
}

function shutdown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function startDaemon(config: Config, log: Logger, hooks: DaemonHooks = {}): Promise<Daemon> {
  const store = new SnapshotStore(join(config.root_path, METADATA_DB));
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
  try {
    const overlayOptions = overlayBaseOptions();
    const base = new Snapshotter({ root: config.root_path, store, overlayOptions, log });
    const remote = hooks.remote ? await hooks.remote(base) : undefined;
    const snapshotter = remote ? new Snapshotter({ root: config.root_path, store, overlayOptions, log, remote }) : base;
    server.addService(snapshotsServiceDefinition(), new SnapshotsService(snapshotter, log, hooks.metrics).implementation());
    await listen(server, config.address);
    // Whether malloc maps huge pages (see huge-page-malloc.ts): an operator running the daemon
    // outside the systemd unit can see that it lacks the tunable.
    log.info({ address: config.address, root: config.root_path, overlayOptions, hugePageMalloc: hugePageMalloc(process.env) }, 'soci-snapshotter-grpc serving');
    let stopped: Promise<void> | undefined;
    return {
      snapshotter,
      address: config.address,
      stop: (graceMs = 10_000) => {
        stopped ??= (async () => {
          await shutdown(server, graceMs);
          store.close();
          await unlink(config.address).catch(() => undefined);
        })();
        return stopped;
      },
    };
  } catch (err) {
    server.forceShutdown();
    store.close();
    throw err;
  }
}
