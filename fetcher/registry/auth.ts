import { failedPrecondition, unavailable } from '../../errors/errors.js';
import type { Credential, CredentialSource } from './credentials.js';

/**
 * Registry authorization: Basic, and the Docker/OCI Bearer token flow (a 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, a token from the realm, cached
 * per host and scope until it expires). Tokens and passwords never enter messages or logs.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Parses a WWW-Authenticate value into challenges (RFC 7235: several may share one header). */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let s = value.trim();
  let cur: Challenge | undefined;
  while (s.length > 0) {
    s = s.replace(/^[\s,]+/, '');
    const tok = TOKEN.exec(s);
    if (!tok) break;
    const word = tok[0];
    const after = s.slice(word.length);
    const eq = /^\s*=\s*/.exec(after);
    if (!eq || !cur) {
      // A token not followed by '=' starts a new challenge.
      cur = { scheme: word.toLowerCase(), params: {} };
      out.push(cur);
      s = after;
      continue;
    }
    let rest = after.slice(eq[0].length);
    let val: string;
    if (rest.startsWith('"')) {
      let i = 1;
      val = '';
      while (i < rest.length && rest[i] !== '"') {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        val += rest[i];
        i++;
      }
      rest = rest.slice(i + 1);
    } else {
      const m = /^[^,\s]*/.exec(rest);
      val = m ? m[0] : '';
      rest = rest.slice(val.length);
    }
    cur.params[word.toLowerCase()] = val;
    s = rest;
  }
  return out;
}

export interface TokenResponse {
  token: string;
  /** Seconds; the spec's default is 60. */
  expiresIn: number;
  issuedAt?: number;
}

export function parseTokenResponse(body: Buffer, what: string): TokenResponse {
  let j: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    j = JSON.parse(body.toString('utf8')) as typeof j;
  } catch {
    throw unavailable(`${what}: token response is not JSON`);
  }
  const token = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
  if (!token) throw unavailable(`${what}: token response has no token`);
  const expiresIn = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
  const issued = typeof j.issued_at === 'string' ? Date.parse(j.issued_at) : NaN;
  return { token, expiresIn, issuedAt: Number.isNaN(issued) ? undefined : issued };
}

export function basicHeader(c: Credential): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
}

/** Fetches from a token realm: GET with the given headers, answering status and body. */
export type TokenGet = (url: URL, headers: Record<string, string>) => Promise<{ status: number; body: Buffer }>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Credential lookups use the registry name docker config knows (docker.io for Docker Hub's API host). */
export function credentialKey(host: string): string {
  return host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'docker.io' : host;
}

export class Authorizer {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly creds: CredentialSource,
    private readonly getToken: TokenGet,
    private readonly now: () => number = Date.now,
  ) {}

  /** The Authorization header for a request to `host` needing `scopes`, when the host is known to want one. */
  async header(host: string, scopes: string[]): Promise<string | undefined> {
    const ch = this.challenges.get(host);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.creds.get(credentialKey(host));
      return c ? basicHeader(c) : undefined;
    }
    if (ch.scheme !== 'bearer') return undefined;
    const tok = await this.token(host, ch, scopes);
    return `Bearer ${tok.token}`;
  }

  /**
   * Records a 401's challenge and drops the cached token for these scopes. Answers whether
   * a retry can succeed (a challenge we can answer).
   */
  async onUnauthorized(host: string, scopes: string[], wwwAuthenticate: string | undefined): Promise<boolean> {
    const all = parseWwwAuthenticate(wwwAuthenticate ?? '');
    const ch = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (!ch) return false;
    if (ch.scheme === 'bearer' && !ch.params.realm) return false;
    this.challenges.set(host, ch);
    this.tokens.delete(this.tokenKey(host, scopes));
    if (ch.scheme === 'basic') return (await this.creds.get(credentialKey(host))) !== undefined;
    return true;
  }

  private tokenKey(host: string, scopes: string[]): string {
    return `${host}|${[...scopes].sort().join(' ')}`;
  }

  private async token(host: string, ch: Challenge, scopes: string[]): Promise<CachedToken> {
    const key = this.tokenKey(host, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return cached;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(host, ch, scopes).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return t;
  }

  private async fetchToken(host: string, ch: Challenge, scopes: string[]): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(ch.params.realm);
    } catch {
      throw unavailable(`registry ${host}: token realm ${JSON.stringify(ch.params.realm)} is not a URL`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const want = new Set(scopes);
    for (const s of (ch.params.scope ?? '').split(' ').filter(Boolean)) want.add(s);
    for (const s of want) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    const c = await this.creds.get(credentialKey(host));
    if (c) headers.authorization = basicHeader(c);
    const what = `registry ${host}: token from ${url.origin}${url.pathname} for ${[...want].join(' ') || 'no scope'}`;
    const res = await this.getToken(url, headers);
    if (res.status === 401 || res.status === 403) {
      throw failedPrecondition(`${what}: denied (HTTP ${res.status}${c ? ', credentials rejected' : ', no credentials'})`);
    }
    if (res.status !== 200) throw unavailable(`${what}: HTTP ${res.status}`);
    const t = parseTokenResponse(res.body, what);
    // Local receipt time, not issued_at: the token server's clock may be skewed against ours.
    const start = this.now();
    // Renew a little early so a token does not expire between check and use.
    const margin = Math.min(30, t.expiresIn / 10) * 1000;
    return { token: t.token, expiresAt: start + t.expiresIn * 1000 - margin };
  }
}

/** The token scopes of a repository operation. */
export function repoScope(path: string, actions: 'pull' | 'pull,push'): string {
  return `repository:${path}:${actions}`;
}
