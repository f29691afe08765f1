#!/usr/bin/env node
/**
 * soci-snapshotter-grpc: the containerd proxy snapshotter daemon.
 * `soci-snapshotter-grpc [--address SOCKET] [--root DIR] [--config FILE] [--log-level LEVEL]`
 */
import { Command, CommanderError } from 'commander';
import { pino, type Logger } from 'pino';
import { describe } from '../errors/errors.js';
import { loadConfig } from '../config/load.js';
import { DEFAULT_CONFIG_PATH } from '../config/schema.js';
import type { Config } from '../config/types.js';
import { startDaemon } from './server.js';
import { DaemonMetrics } from './metrics.js';
import { startMetricsServer } from './metrics-server.js';
import { startSociLayers, type SociLayers } from './soci-layers.js';

interface Flags {
  address?: string;
  root?: string;
  config?: string;
  logLevel?: string;
}

function parseFlags(argv: string[]): Flags {
  const program = new Command('soci-snapshotter-grpc')
    .description('containerd snapshotter plugin for Seekable OCI (SOCI) lazy loading')
    .option('--address <socket>', 'unix socket to serve the snapshots API on (config: address)')
    .option('--root <dir>', 'directory for snapshots and metadata (config: root_path)')
    .option('--config <file>', `TOML config file (default: ${DEFAULT_CONFIG_PATH} if it exists)`)
    .option('--log-level <level>', 'trace, debug, info, warn, error or fatal (config: log_level)')
    .exitOverride();
  program.parse(argv);
  return program.opts<Flags>();
}

const SHUTDOWN_GRACE_MS = 10_000;

type Stop = (graceMs: number) => Promise<void>;

function onSignals(stopAll: Stop, log: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    stopAll(SHUTDOWN_GRACE_MS).then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: describe(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** A metrics address that cannot be served is a config error: the daemon does not stay up without it. */
async function serveMetrics(metrics: DaemonMetrics, config: Config, log: Logger, stopDaemon: Stop): Promise<() => Promise<void>> {
  try {
    const server = await startMetricsServer(metrics, { address: config.metrics_address, network: config.metrics_network }, log);
    return () => server.close();
  } catch (err) {
    await stopDaemon(0);
    throw err;
  }
}

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exitCode = err.exitCode;
    return;
  }
  let log: Logger | undefined;
  try {
    const config = loadConfig(flags.config, {
      overrides: { address: flags.address, root_path: flags.root, log_level: flags.logLevel },
    });
    log = pino({ name: 'soci-snapshotter-grpc', level: config.log_level });
    const logger = log;
    // A stray rejection from one request must not end every other request.
    process.on('unhandledRejection', (err) => logger.error({ err: describe(err) }, 'unhandled rejection'));
    // Only when scraped: the default process metrics run an event-loop monitor.
    const metrics = config.metrics_address !== '' ? new DaemonMetrics() : undefined;
    let layers: SociLayers | undefined;
    const daemon = await startDaemon(config, log, {
      metrics,
      remote: async (sn) => {
        layers = await startSociLayers(config, sn, logger, metrics);
        return layers.preparer;
      },
    });
    const stopMetrics = metrics ? await serveMetrics(metrics, config, log, daemon.stop) : undefined;
    onSignals(async (graceMs) => {
      await stopMetrics?.();
      await daemon.stop(graceMs);
      await layers?.close();
    }, log);
  } catch (err) {
    const lines = describe(err);
    if (log) log.fatal({ err: lines }, 'cannot start');
    process.stderr.write(`soci-snapshotter-grpc: ${err instanceof Error ? err.message : lines}\n`);
    process.exitCode = 1;
  }
}

await main();
