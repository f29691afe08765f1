/**
 * A reverse HTTP proxy for fault tests: sits between a client and a test registry on 127.0.0.1,
 * injects faults chosen by per-request rules, and logs every response it served (status, body
 * bytes, Range) so tests can also assert how lazily a client fetched.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type FaultAction =
  /** Forward headers and afterBytes of body, then reset the connection (TCP RST). */
  | { kind: 'reset-mid-body'; afterBytes: number }
  /** Answer with this status without contacting the upstream (e.g. 500, 503, 429 + Retry-After). */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward headers (full Content-Length) and afterBytes of body (default: half), then close cleanly (FIN). */
  | { kind: 'truncate'; afterBytes?: number }
  /** Forward everything with count bytes (default 1) from body offset (default 0) inverted. */
  | { kind: 'corrupt'; offset?: number; count?: number }
  /** Never answer; or send headers (and optionally afterBytes of body) and then nothing. Held until the client gives up or stop(). */
  | { kind: 'stall'; afterHeaders?: boolean; afterBytes?: number }
  /** Wait ms, then forward normally. */
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  /** Exact method (case-insensitive); any when absent. */
  method?: string;
  /** Matched against the request target (path and query); any when absent. */
  path?: RegExp;
  /** Let this many matching requests pass before the rule applies. Default 0. */
  skip?: number;
  /** Apply to this many matching requests (after skip), then pass. Default: all. */
  times?: number;
  action: FaultAction;
}

export type Outcome = 'complete' | 'reset' | 'truncated' | 'stalled' | 'aborted' | 'upstream-error';

export interface ProxyLogEntry {
  method: string;
  /** Request target: path and query. */
  path: string;
  /** Range request header, if any. */
  range?: string;
  /** Status sent to the client (0 when no headers were sent). */
  status: number;
  /** Response body bytes written to the client. */
  bytes: number;
  /** Which action handled it ('pass' when no rule applied). */
  action: FaultAction['kind'] | 'pass';
  outcome: Outcome;
}

export interface FaultProxyOptions {
  rules?: FaultRule[];
  /** PEM certificate and key: the proxy then listens with HTTPS. */
  tls?: { cert: string; key: string };
}

export interface FaultProxy {
  url: string;
  host: string;
  port: number;
  setRules(rules: FaultRule[]): void;
  /** How many requests each current rule has matched (including skipped and exhausted ones). */
  ruleHits(): number[];
  log(): ProxyLogEntry[];
  clearLog(): void;
  /** Sum of response body bytes written to clients, over the log. */
  bytesServed(): number;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** Decides what happens to each body chunk on its way to the client; false stops forwarding. */
export interface BodyPolicy {
  /** Stop right after the headers, before any body byte. */
  atHeaders?: 'reset' | 'stall';
  onHeaders?(res: ServerResponse, upstream: IncomingMessage): void;
  chunk(data: Buffer, sentBefore: number): { data: Buffer; stop?: 'reset' | 'truncate' | 'stall' };
}

const passPolicy: BodyPolicy = { chunk: (data) => ({ data }) };

export interface ForwardOptions {
  target: URL;
  agent: Agent;
  /** Request body already read (then not piped from req). */
  body?: Buffer;
  policy?: BodyPolicy;
  /** Headers added to the client response. */
  extraHeaders?(upstream: IncomingMessage): Record<string, string>;
  entry: ProxyLogEntry;
}

function finishStop(res: ServerResponse, stop: 'reset' | 'truncate' | 'stall', entry: ProxyLogEntry): void {
  const socket = res.socket;
  if (stop === 'stall') return void (entry.outcome = 'stalled');
  entry.outcome = stop === 'reset' ? 'reset' : 'truncated';
  if (!socket) return;
  // Give the kernel a moment to send what was written; a RST would otherwise discard it.
  setTimeout(() => (stop === 'reset' ? socket.resetAndDestroy() : socket.end()), 20);
}

/** Forwards one request to target (keeping the client's Host, so registry Location URLs point back here). */
export function forward(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions): void {
  const { entry } = opts;
  const policy = opts.policy ?? passPolicy;
  const url = new URL(req.url ?? '/', opts.target);
  const headers = endToEnd(req.headers);
  if (opts.body) headers['content-length'] = String(opts.body.length);
  const up = httpRequest(url, { method: req.method, headers, agent: opts.agent }, (upRes) => {
    const outHeaders = { ...endToEnd(upRes.headers), ...(opts.extraHeaders?.(upRes) ?? {}) };
    entry.status = upRes.statusCode ?? 502;
    res.writeHead(entry.status, outHeaders);
    policy.onHeaders?.(res, upRes);
    res.flushHeaders();
    if (policy.atHeaders) {
      upRes.destroy();
      return finishStop(res, policy.atHeaders, entry);
    }
    let stopped = false;
    upRes.on('data', (chunk: Buffer) => {
      if (stopped) return;
      const r = policy.chunk(chunk, entry.bytes);
      if (r.data.length > 0) res.write(r.data);
      entry.bytes += r.data.length;
      if (r.stop) {
        stopped = true;
        upRes.destroy();
        finishStop(res, r.stop, entry);
      }
    });
    upRes.on('end', () => {
      if (stopped) return;
      entry.outcome = 'complete';
      res.end();
    });
    upRes.on('error', () => {
      if (!stopped) res.destroy();
    });
  });
  up.on('error', () => {
    entry.outcome = 'upstream-error';
    if (!res.headersSent) {
      entry.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('upstream error\n');
    } else res.destroy();
  });
  res.on('close', () => {
    if (entry.outcome === 'complete' || res.writableFinished) return;
    if (entry.outcome === 'stalled' || entry.outcome === 'reset' || entry.outcome === 'truncated') return;
    entry.outcome = 'aborted';
    up.destroy();
  });
  if (opts.body) up.end(opts.body);
  else req.pipe(up);
}

function limitPolicy(limit: number, stop: 'reset' | 'truncate' | 'stall'): BodyPolicy {
  return {
    chunk: (data, sent) => {
      const room = Math.max(0, limit - sent);
      return room >= data.length ? { data } : { data: data.subarray(0, room), stop };
    },
  };
}

function corruptPolicy(offset: number, count: number): BodyPolicy {
  return {
    chunk: (data, sent) => {
      const out = Buffer.from(data);
      for (let i = Math.max(offset, sent); i < Math.min(offset + count, sent + data.length); i++) out[i - sent] ^= 0xff;
      return { data: out };
    },
  };
}

/** Truncation at afterBytes, or at half the declared length; a zero-byte limit stops at the first chunk. */
function truncatePolicy(afterBytes: number | undefined): BodyPolicy {
  let limit = afterBytes ?? 0;
  return {
    onHeaders: (_res, up) => {
      if (afterBytes === undefined) limit = Math.floor(Number(up.headers['content-length'] ?? 0) / 2);
    },
    chunk: (data, sent) => limitPolicy(limit, 'truncate').chunk(data, sent),
  };
}

function policyFor(action: FaultAction): BodyPolicy | undefined {
  switch (action.kind) {
    case 'reset-mid-body': return limitPolicy(action.afterBytes, 'reset');
    case 'truncate': return truncatePolicy(action.afterBytes);
    case 'corrupt': return corruptPolicy(action.offset ?? 0, action.count ?? 1);
    case 'stall': return limitPolicy(action.afterBytes ?? 0, 'stall');
    default: return undefined;
  }
}

/** A limit policy only fires on a body chunk; a reset or stall at 0 bytes must also work for empty bodies. */
function zeroByteStop(action: FaultAction): 'reset' | 'stall' | undefined {
  if (action.kind === 'reset-mid-body' && action.afterBytes === 0) return 'reset';
  if (action.kind === 'stall' && (action.afterBytes ?? 0) === 0) return 'stall';
  return undefined;
}

interface RuleState {
  rule: FaultRule;
  hits: number;
}

function pickAction(states: RuleState[], req: IncomingMessage): FaultAction | undefined {
  for (const s of states) {
    const { rule } = s;
    if (rule.method && rule.method.toUpperCase() !== req.method) continue;
    if (rule.path && !rule.path.test(req.url ?? '/')) continue;
    s.hits += 1;
    const n = s.hits - (rule.skip ?? 0);
    if (n >= 1 && n <= (rule.times ?? Infinity)) return rule.action;
  }
  return undefined;
}

function answerStatus(req: IncomingMessage, res: ServerResponse, action: Extract<FaultAction, { kind: 'status' }>, entry: ProxyLogEntry): void {
  req.resume();
  const body = Buffer.from(action.body ?? `{"errors":[{"code":"UNKNOWN","message":"injected ${action.status}"}]}`);
  res.writeHead(action.status, { 'content-type': 'application/json', 'content-length': body.length, ...action.headers });
  res.end(req.method === 'HEAD' ? undefined : body);
  entry.status = action.status;
  entry.bytes = req.method === 'HEAD' ? 0 : body.length;
  entry.outcome = 'complete';
}

export interface ListeningServer {
  server: Server;
  url: string;
  host: string;
  port: number;
  /** Closes the listener and destroys every open socket. */
  close(): Promise<void>;
}

/** An HTTP(S) server on 127.0.0.1 at a free port that tracks its sockets so close() never waits on held ones. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, tls?: { cert: string; key: string }): Promise<ListeningServer> {
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
  const sockets = new Set<Socket>();
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;
  return {
    server, port, host, url: `${tls ? 'https' : 'http'}://${host}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
    }),
  };
}

export async function startFaultProxy(targetUrl: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const agent = new Agent({ keepAlive: true });
  let states: RuleState[] = (opts.rules ?? []).map((rule) => ({ rule, hits: 0 }));
  let log: ProxyLogEntry[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const action = pickAction(states, req);
    const range = req.headers.range;
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', path: req.url ?? '/', ...(range ? { range } : {}), status: 0, bytes: 0, action: action?.kind ?? 'pass', outcome: 'aborted' };
    log.push(entry);
    if (action?.kind === 'status') return answerStatus(req, res, action, entry);
    if (action?.kind === 'stall' && !action.afterHeaders && action.afterBytes === undefined) {
      req.resume();
      entry.outcome = 'stalled';
      return;
    }
    const zero = action ? zeroByteStop(action) : undefined;
    const policy = zero ? { atHeaders: zero, chunk: passPolicy.chunk } : action ? policyFor(action) : undefined;
    const go = (): void => forward(req, res, { target, agent, policy, entry });
    if (action?.kind === 'delay') setTimeout(go, action.ms);
    else go();
  };

  const srv = await listen(handle, opts.tls);
  return {
    url: srv.url, host: srv.host, port: srv.port,
    setRules: (rules) => { states = rules.map((rule) => ({ rule, hits: 0 })); },
    ruleHits: () => states.map((s) => s.hits),
    log: () => log.map((e) => ({ ...e })),
    clearLog: () => { log = []; },
    bytesServed: () => log.reduce((n, e) => n + e.bytes, 0),
    stop: async () => {
      await srv.close();
      agent.destroy();
    },
  };
}
