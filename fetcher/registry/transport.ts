import { readFile } from 'node:fs/promises';
import { SociError, failedPrecondition, invalidArgument, unavailable } from '../../errors/errors.js';
import { Authorizer } from './auth.js';
import { hostBaseUrl, loadHosts, type Capability, type HostsOptions, type RegistryHost } from './hosts.js';
import { HttpPools, discard, header, readBody, type HttpResponse, type RequestBody, type Timeouts, type TlsSettings } from './http.js';
import { RetryableError, isRetryableStatus, parseRetryAfter, withRetries, type RetryPolicy } from './retry.js';
import { statusError } from './status-error.js';

/**
 * One registry request against the configured hosts: mirrors in order then upstream, auth
 * (a 401 refreshes credentials once), redirects (Authorization dropped when the host
 * changes), and retries. What to do with a response is the caller's `consume`.
 */
export interface Logger {
  debug(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the host's API root (`<name>/blobs/<digest>`), or an absolute URL (upload Location). */
  path: string | URL;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: RequestBody;
  scopes: string[];
}

export interface SentResponse {
  res: HttpResponse;
  /** The URL that answered, after redirects. */
  url: URL;
}

export interface TransportOptions {
  hostsDir?: string;
  hosts: HostsOptions;
  timeouts: Timeouts;
  retry: RetryPolicy;
  userAgent: string;
  logger?: Logger;
  authorizer: Authorizer;
  pools: HttpPools;
}

const MAX_REDIRECTS = 5;
const ERROR_BODY_LIMIT = 64 * 1024;

export class Transport {
  private readonly hostCache = new Map<string, Promise<RegistryHost[]>>();
  private readonly tlsCache = new Map<RegistryHost, Promise<TlsSettings | undefined>>();

  constructor(private readonly o: TransportOptions) {}

  async hosts(registry: string, cap: Capability): Promise<RegistryHost[]> {
    let p = this.hostCache.get(registry);
    if (!p) {
      p = loadHosts(this.o.hostsDir, registry, this.o.hosts);
      this.hostCache.set(registry, p);
      p.catch(() => this.hostCache.delete(registry));
    }
    const hosts = (await p).filter((h) => h.capabilities.has(cap));
    if (hosts.length === 0) throw failedPrecondition(`registry ${registry}: no host in hosts.toml has the ${cap} capability`);
    return hosts;
  }

  private tls(host: RegistryHost): Promise<TlsSettings | undefined> {
    let p = this.tlsCache.get(host);
    if (!p) {
      p = loadTls(host);
      this.tlsCache.set(host, p);
    }
    return p;
  }

  private urlFor(host: RegistryHost, registry: string, req: RegistryRequest): URL {
    const u = req.path instanceof URL ? new URL(req.path) : new URL(`${hostBaseUrl(host)}/${req.path}`);
    for (const [k, v] of Object.entries(req.query ?? {})) u.searchParams.set(k, v);
    if (host.mirror && !(req.path instanceof URL)) u.searchParams.set('ns', registry);
    return u;
  }

  private baseHeaders(host: RegistryHost, req: RegistryRequest): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.o.userAgent };
    for (const [k, v] of Object.entries(host.headers)) h[k.toLowerCase()] = v.join(', ');
    for (const [k, v] of Object.entries(req.headers ?? {})) h[k.toLowerCase()] = v;
    return h;
  }

  /** One attempt with auth and redirects; errors for 401/403 after the credential refresh. */
  async send(host: RegistryHost, registry: string, req: RegistryRequest, what: string, signal?: AbortSignal): Promise<SentResponse> {
    const first = this.urlFor(host, registry, req);
    const tls = await this.tls(host);
    // One unauthenticated 401 discovers the challenge; one rejected credential is refreshed; then give up.
    let discovered = false;
    let refreshed = false;
    for (;;) {
      const auth = await this.o.authorizer.header(host.host, req.scopes);
      const sent = await this.follow(first, host, req, auth, tls, what, signal);
      if (sent.res.statusCode !== 401 || sent.url.host !== host.host) return sent;
      const challenge = sent.res.headers['www-authenticate'];
      const body = await readBody(sent.res, ERROR_BODY_LIMIT, what).catch(() => Buffer.alloc(0));
      const giveUp = auth ? refreshed : discovered;
      if (auth) refreshed = true;
      else discovered = true;
      const canRetry = !giveUp && (await this.o.authorizer.onUnauthorized(host.host, req.scopes, Array.isArray(challenge) ? challenge.join(', ') : challenge));
      if (!canRetry) throw statusError(401, `${what}: ${auth ? 'credentials rejected' : 'authentication required'}`, body);
    }
  }

  private async follow(
    start: URL,
    host: RegistryHost,
    req: RegistryRequest,
    auth: string | undefined,
    tls: TlsSettings | undefined,
    what: string,
    signal?: AbortSignal,
  ): Promise<SentResponse> {
    let url = start;
    let method = req.method;
    let body = req.body;
    for (let hop = 0; ; hop++) {
      const sameHost = url.host === host.host;
      const headers = this.baseHeaders(host, req);
      if (auth && sameHost) headers.authorization = auth;
      if (!sameHost) delete headers.authorization;
      const res = await this.o.pools.request({ method, url, headers, body, tls: sameHost ? tls : undefined, signal });
      const loc = header(res, 'location');
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || !loc || method === 'POST' || method === 'PATCH' || (method === 'PUT' && res.statusCode < 307)) {
        return { res, url };
      }
      await discard(res.body);
      if (hop >= MAX_REDIRECTS) throw unavailable(`${what}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(loc, url);
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
    }
  }

  /** Throws for a retryable status (after draining the body), so withRetries repeats the attempt. */
  private async checkRetryable(sent: SentResponse, what: string): Promise<void> {
    const s = sent.res.statusCode;
    if (!isRetryableStatus(s)) return;
    const retryAfter = parseRetryAfter(sent.res.headers['retry-after']);
    await discard(sent.res.body);
    throw new RetryableError(`${what}: HTTP ${s}`, retryAfter);
  }

  /**
   * A request with retries on one host. `consume` reads the response inside the attempt, so
   * a body cut mid-way is fetched again from the start, never handed out half-read.
   */
  async call<T>(host: RegistryHost, registry: string, req: RegistryRequest, what: string, consume: (s: SentResponse) => Promise<T>, retries?: RetryPolicy): Promise<T> {
    const { totalMs } = this.o.timeouts;
    const signal = totalMs > 0 ? AbortSignal.timeout(totalMs) : undefined;
    const policy = retries ?? this.o.retry;
    try {
      return await withRetries(
        {
          what,
          policy,
          deadline: totalMs > 0 ? Date.now() + totalMs : undefined,
          onRetry: (i) => this.o.logger?.debug({ host: host.host, ...i }, `${what}: retrying`),
        },
        async () => {
          const sent = await this.send(host, registry, req, what, signal);
          await this.checkRetryable(sent, what);
          return await consume(sent);
        },
      );
    } catch (e) {
      if (signal?.aborted && !(e instanceof SociError && e.kind !== 'unavailable')) {
        throw unavailable(`${what}: timed out after ${totalMs} ms`, e);
      }
      if (e instanceof SociError) throw e;
      // TLS verification and other transport failures that are not worth a retry.
      const code = (e as { code?: unknown }).code;
      throw unavailable(`${what}: ${typeof code === 'string' ? code + ' ' : ''}${e instanceof Error ? e.message : String(e)}`, e);
    }
  }

  /**
   * Tries each host with the capability in order: a mirror that fails or lacks the object
   * falls through to the next host; the last host's error is the answer. Hosts before the
   * last get one retry only, so a dead mirror costs little.
   */
  async onHosts<T>(registry: string, cap: Capability, fn: (host: RegistryHost, retries: RetryPolicy) => Promise<T>): Promise<T> {
    const hosts = await this.hosts(registry, cap);
    for (let i = 0; ; i++) {
      const last = i === hosts.length - 1;
      const retries = last ? this.o.retry : { ...this.o.retry, max: Math.min(1, this.o.retry.max) };
      try {
        return await fn(hosts[i], retries);
      } catch (e) {
        if (last) throw e;
        this.o.logger?.warn({ host: hosts[i].host, error: e instanceof Error ? e.message : String(e) }, `registry ${registry}: mirror failed, trying the next host`);
      }
    }
  }
}

/** Reads a host's CA and client certificate files; undefined when it has no TLS settings. */
async function loadTls(host: RegistryHost): Promise<TlsSettings | undefined> {
  const t = host.tls;
  if (t.caFiles.length === 0 && t.clients.length === 0 && !t.skipVerify) return undefined;
  const read = (p: string, what: string): Promise<string> =>
    readFile(p, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw invalidArgument(`registry host ${host.host}: cannot read ${what} ${p}: ${e.code ?? e.message}`);
    });
  const ca = await Promise.all(t.caFiles.map((p) => read(p, 'CA certificate')));
  const client = t.clients[0];
  const cert = client ? await read(client.cert, 'client certificate') : undefined;
  const key = client?.key ? await read(client.key, 'client key') : cert;
  return { ca, cert, key: client ? key : undefined, skipVerify: t.skipVerify };
}

/** Reads an error response's body (bounded) and turns it into a SociError. */
export async function errorFrom(sent: SentResponse, what: string): Promise<SociError> {
  const body = await readBody(sent.res, ERROR_BODY_LIMIT, what).catch(() => Buffer.alloc(0));
  return statusError(sent.res.statusCode, what, body);
}
