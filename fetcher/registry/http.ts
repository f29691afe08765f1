import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import { invalidArgument } from '../../errors/errors.js';
import { RetryableError } from './retry.js';

/**
 * HTTP/1.1 over undici: one keep-alive Pool per (origin, TLS settings), created on first
 * use and reused for the client's lifetime.
 */
export interface Timeouts {
  connectMs: number;
  headersMs: number;
  /** Longest silence between body chunks. */
  bodyMs: number;
  /** Whole operation including retries; 0 = none. */
  totalMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, headersMs: 30_000, bodyMs: 30_000, totalMs: 0 };

export interface TlsSettings {
  /** PEM CA certificates to trust in addition to the system's. */
  ca: string[];
  cert?: string;
  key?: string;
  skipVerify: boolean;
}

export type RequestBody = Buffer | (() => AsyncIterable<Uint8Array>);

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  body?: RequestBody;
  tls?: TlsSettings;
  signal?: AbortSignal;
}

export type HttpResponse = Dispatcher.ResponseData;
export type ResponseBody = HttpResponse['body'];

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

/** Node's bundled roots plus the distribution's bundle, read once (custom CAs replace Node's default list). */
function systemCas(): string[] {
  const out = [...rootCertificates];
  for (const f of SYSTEM_BUNDLES) {
    try {
      out.push(readFileSync(f, 'utf8'));
      break;
    } catch {
      // not on this distribution
    }
  }
  return out;
}

export interface PoolOptions {
  timeouts: Timeouts;
  connections: number;
}

export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  private systemCa: string[] | undefined;

  constructor(private readonly opts: PoolOptions) {}

  private poolFor(url: URL, tls: TlsSettings | undefined): Pool {
    const key = `${url.origin}|${tls ? JSON.stringify(tls) : ''}`;
    let pool = this.pools.get(key);
    if (pool) return pool;
    const t = this.opts.timeouts;
    const connect: Record<string, unknown> = { timeout: t.connectMs };
    if (url.protocol === 'https:' && tls) {
      if (tls.ca.length > 0) connect.ca = [...(this.systemCa ??= systemCas()), ...tls.ca];
      if (tls.cert) connect.cert = tls.cert;
      if (tls.key) connect.key = tls.key;
      if (tls.skipVerify) connect.rejectUnauthorized = false;
    }
    pool = new Pool(url.origin, {
      connections: this.opts.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: t.headersMs,
      bodyTimeout: t.bodyMs,
      connect,
    });
    this.pools.set(key, pool);
    return pool;
  }

  /** One attempt: no retries, no redirects. The caller consumes or dumps the body. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const pool = this.poolFor(req.url, req.tls);
    let body: Buffer | Readable | undefined;
    if (Buffer.isBuffer(req.body)) body = req.body;
    else if (req.body) body = Readable.from(req.body(), { objectMode: false });
    // undici enforces headersTimeout with ~1 s granularity; our own timer keeps short limits exact.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(headersTimeoutError(req.url)), this.opts.timeouts.headersMs);
    try {
      return await pool.request({
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers: req.headers,
        body,
        signal: req.signal ? AbortSignal.any([req.signal, ac.signal]) : ac.signal,
      });
    } catch (e) {
      throw ac.signal.aborted && !req.signal?.aborted ? headersTimeoutError(req.url) : e;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}

function headersTimeoutError(url: URL): Error {
  return Object.assign(new Error(`no response headers from ${url.host} in time`), { code: 'UND_ERR_HEADERS_TIMEOUT' });
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function contentLength(res: HttpResponse): number | undefined {
  const v = header(res, 'content-length');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Abandons a body mid-way; the listener keeps the abort it causes from surfacing as an uncaught error. */
export function cut(body: ResponseBody): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Discards a body so its connection can be reused (small error bodies), or cuts it. */
export async function discard(body: ResponseBody): Promise<void> {
  await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

/**
 * Makes the buffer a body of `size` bytes is read into (e.g. one recycled from a pool); told,
 * when it listens, how many bytes are in place as they arrive.
 */
export interface BodyAlloc {
  (size: number): Buffer;
  received?(bytes: number): void;
}

/**
 * Reads a whole body into one buffer, preallocated from Content-Length by `alloc` (far cheaper
 * than collecting and concatenating). Fails when the body exceeds `limit`; a body shorter than
 * its Content-Length is a cut connection and retryable.
 */
export async function readBody(res: HttpResponse, limit: number, what: string, alloc: BodyAlloc = Buffer.allocUnsafe): Promise<Buffer> {
  const len = contentLength(res);
  if (len !== undefined && len > limit) {
    cut(res.body);
    throw invalidArgument(`${what}: response of ${len} bytes exceeds the limit of ${limit}`);
  }
  if (len !== undefined) {
    const buf = alloc(len);
    let n = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (n + chunk.length > len) {
        cut(res.body);
        throw new RetryableError(`${what}: body longer than its Content-Length ${len}`);
      }
      chunk.copy(buf, n);
      n += chunk.length;
      alloc.received?.(n);
    }
    if (n !== len) throw new RetryableError(`${what}: body cut short at ${n} of ${len} bytes`);
    return buf;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      cut(res.body);
      throw invalidArgument(`${what}: response exceeds the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, n);
}
