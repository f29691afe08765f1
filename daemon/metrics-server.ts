/**
 * Serves GET /metrics (Prometheus text format) on `host:port` or a unix socket (config
 * metrics_address / metrics_network). Anything else gets 404/405; a malformed request only
 * costs its own connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unlink } from 'node:fs/promises';
import { describe, invalidArgument, unavailable } from '../errors/errors.js';
import type { MetricsNetwork } from '../config/types.js';
import type { DaemonMetrics } from './metrics.js';
import { claimSocketPath } from './server.js';

export const METRICS_PATH = '/metrics';

export interface MetricsServerOptions {
  /** `host:port` (`:port` = all interfaces, `[v6]:port`) for tcp, a socket path for unix. */
  address: string;
  network: MetricsNetwork;
}

export interface MetricsServerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface MetricsServer {
  /** Where it listens: `host:port` with the real port (tcp), or the socket path (unix). */
  readonly address: string;
  close(): Promise<void>;
}

type Exposer = Pick<DaemonMetrics, 'exposition'>;

/** Splits `host:port`; an empty host means every interface, as Go's net.Listen reads it. */
export function parseTcpAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw invalidArgument(`metrics_address ${JSON.stringify(address)} is not host:port`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

async function answer(metrics: Exposer, req: IncomingMessage, res: ServerResponse, log: MetricsServerLogger): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== METRICS_PATH) return plain(res, 404, 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return plain(res, 405, 'method not allowed\n');
  }
  try {
    const { contentType, body } = await metrics.exposition();
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    log.warn({ err: describe(err) }, 'metrics: cannot collect');
    plain(res, 500, 'cannot collect metrics\n');
  }
}

function plain(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function listen(server: Server, opts: MetricsServerOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error): void => reject(unavailable(`metrics: cannot listen on ${opts.network} ${opts.address}: ${err.message}`, err));
    server.once('error', failed);
    const ready = (): void => {
      server.off('error', failed);
      resolve();
    };
    if (opts.network === 'unix') server.listen(opts.address, ready);
    else {
      const { host, port } = parseTcpAddress(opts.address);
      server.listen(port, host, ready);
    }
  });
}

function boundAddress(server: Server, opts: MetricsServerOptions): string {
  if (opts.network === 'unix') return opts.address;
  const a = server.address() as AddressInfo;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export async function startMetricsServer(metrics: Exposer, opts: MetricsServerOptions, log: MetricsServerLogger): Promise<MetricsServer> {
  if (opts.address === '') throw invalidArgument('metrics_address is empty');
  const server = createServer((req, res) => {
    answer(metrics, req, res, log).catch((err: unknown) => {
      log.warn({ err: describe(err) }, 'metrics: request failed');
      res.destroy();
    });
  });
  // Node answers a malformed request with 400 by itself only without a listener; with one, we must.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  if (opts.network === 'unix') await claimSocketPath(opts.address);
  await listen(server, opts);
  server.on('error', (err) => log.warn({ err: describe(err) }, 'metrics server error'));
  const address = boundAddress(server, opts);
  log.info({ address, network: opts.network }, 'metrics serving');
  let closed: Promise<void> | undefined;
  return {
    address,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(async () => {
        if (opts.network === 'unix') await unlink(opts.address).catch(() => undefined);
      });
      return closed;
    },
  };
}
