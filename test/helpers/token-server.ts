/**
 * A Bearer token server for docker-registry's `auth: token` mode: Basic-authenticated GET /token
 * (and the OAuth2 POST form), issuing ES256 JWTs that name their key both by an `x5c` chain (the
 * self-signed signing certificate, which is also the registry's rootcertbundle) and by a libtrust
 * `kid`, so either of distribution's key lookups succeeds.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { makeCa } from './tls-ca.js';
import { makeTempDir, removeDir } from './tmp.js';
import type { TokenAuthConfig } from './registry.js';

export interface TokenScope {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServerOptions {
  /** user -> password for Basic auth (GET) and grant_type=password (POST). */
  users?: Record<string, string>;
  issuer?: string;
  service?: string;
  /** Requests without credentials: 'pull' grants pull only, 'empty' a token without access, 'deny' a 401. Default 'pull'. */
  anonymous?: 'pull' | 'empty' | 'deny';
  /** Actions granted for one requested scope; user is undefined for anonymous. Default: all requested (anonymous: see above). */
  grant?(user: string | undefined, scope: TokenScope): string[];
  /** Token lifetime; negative issues already-expired tokens. Default 300. */
  ttlSeconds?: number;
  /** How the JWT header names the signing key. Default 'both'. */
  keyRef?: 'x5c' | 'kid' | 'both';
}

export interface TokenRequestLogEntry {
  method: string;
  user?: string;
  service?: string;
  scopes: string[];
  status: number;
  grantType?: string;
}

export interface IssuedClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: TokenScope[];
}

export interface TokenServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The realm the registry advertises: `${url}/token`. */
  realm: string;
  issuer: string;
  service: string;
  /** PEM of the self-signed signing certificate (the registry's rootcertbundle). */
  certPem: string;
  /** libtrust fingerprint of the signing key, as put in the JWT `kid`. */
  keyId: string;
  /** Every token request, in arrival order (passwords are never recorded). */
  requests(): TokenRequestLogEntry[];
  /** How many tokens were issued (successful requests). */
  tokenCount(): number;
  /**
   * Lifetime of the next tokens. `advertised` is the expires_in told to the client (default: seconds),
   * so a test can hand out tokens the registry refuses (exp over 60 s in the past: its leeway) that look fresh.
   */
  setTtl(seconds: number, advertised?: number): void;
  /** Mints a token directly, e.g. an expired one (negative ttl). */
  mint(user: string, access: TokenScope[], ttlSeconds?: number): string;
  stop(): Promise<void>;
}

/** The `tokenAuth` option of startRegistry for this server. */
export function tokenAuthRegistryConfig(server: TokenServer): TokenAuthConfig {
  return { realm: server.realm, service: server.service, issuer: server.issuer, rootCertBundle: server.certPem };
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust key ID: base32 of the first 240 bits of sha256(SPKI DER), in colon-separated groups of 4. */
export function libtrustKeyId(spkiDer: Buffer): string {
  const enc = base32(createHash('sha256').update(spkiDer).digest().subarray(0, 30));
  return enc.match(/.{1,4}/g)?.join(':') ?? enc;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Parses `repository:name:pull,push`; the name may itself hold ':' (registry ports in other types). */
export function parseScope(s: string): TokenScope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const actions = s.slice(last + 1).split(',').filter((a) => a !== '');
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions };
}

interface Signer {
  key: KeyObject;
  certDer: Buffer;
  certPem: string;
  keyId: string;
}

async function makeSigner(): Promise<Signer> {
  const dir = await makeTempDir('soci-token-key-');
  try {
    const ca = await makeCa(dir, 'soci-test-token-signer');
    const x509 = new X509Certificate(ca.cert);
    const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
    return { key: createPrivateKey(ca.key), certDer: x509.raw, certPem: ca.cert, keyId: libtrustKeyId(spki) };
  } finally {
    await removeDir(dir);
  }
}

function jwt(signer: Signer, keyRef: TokenServerOptions['keyRef'], claims: IssuedClaims): string {
  const header: Record<string, unknown> = { typ: 'JWT', alg: 'ES256' };
  if (keyRef !== 'x5c') header.kid = signer.keyId;
  if (keyRef !== 'kid') header.x5c = [signer.certDer.toString('base64')];
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS ES256 wants the raw r||s signature, not DER.
  const sig = sign('sha256', Buffer.from(input), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

interface TokenRequest {
  method: string;
  grantType?: string;
  /** undefined: anonymous; null: bad credentials. */
  user: string | undefined | null;
  service?: string;
  scopes: string[];
  wantsRefresh: boolean;
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const signer = await makeSigner();
  const issuer = opts.issuer ?? 'soci-test-issuer';
  const service = opts.service ?? 'soci-test-registry';
  const users = opts.users ?? {};
  let ttl = opts.ttlSeconds ?? 300;
  let advertisedTtl = ttl;
  const log: TokenRequestLogEntry[] = [];
  const refreshTokens = new Map<string, string>();
  let issued = 0;

  const checkPassword = (user: string, password: string): string | null => (users[user] !== undefined && users[user] === password ? user : null);

  const grantFor = (user: string | undefined, scope: TokenScope): string[] => {
    if (opts.grant) return opts.grant(user, scope);
    if (user !== undefined) return scope.actions;
    return opts.anonymous === 'empty' ? [] : scope.actions.filter((a) => a === 'pull');
  };

  const mint = (user: string, access: TokenScope[], ttlSeconds = ttl): string => {
    const now = Math.floor(Date.now() / 1000);
    const claims: IssuedClaims = {
      iss: issuer, sub: user, aud: service, exp: now + ttlSeconds, nbf: now - 1, iat: now,
      jti: randomBytes(12).toString('hex'), access,
    };
    return jwt(signer, opts.keyRef ?? 'both', claims);
  };

  const parse = async (req: IncomingMessage): Promise<TokenRequest> => {
    const url = new URL(req.url ?? '/', 'http://token');
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const grantType = form.get('grant_type') ?? undefined;
      let user: string | undefined | null = null;
      if (grantType === 'password') user = checkPassword(form.get('username') ?? '', form.get('password') ?? '');
      else if (grantType === 'refresh_token') user = refreshTokens.get(form.get('refresh_token') ?? '') ?? null;
      const scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
      return { method: 'POST', grantType, user, service: form.get('service') ?? undefined, scopes, wantsRefresh: form.get('access_type') === 'offline' };
    }
    const basic = basicUser(req);
    const user = basic ? checkPassword(basic.user, basic.password) : undefined;
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    return { method: req.method ?? 'GET', user, service: url.searchParams.get('service') ?? undefined, scopes, wantsRefresh: url.searchParams.get('offline_token') === 'true' };
  };

  const respond = (res: ServerResponse, tr: TokenRequest, entry: TokenRequestLogEntry): void => {
    if (tr.service !== undefined && tr.service !== service) return void sendJson(res, (entry.status = 400), { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${tr.service}` }] });
    if (tr.user === null || (tr.user === undefined && opts.anonymous === 'deny')) {
      entry.status = 401;
      return void sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'www-authenticate': `Basic realm="${issuer}"` });
    }
    const access = tr.scopes.map(parseScope).filter((s): s is TokenScope => s !== undefined)
      .map((s) => ({ ...s, actions: grantFor(tr.user ?? undefined, s) }));
    const token = mint(tr.user ?? '', access);
    issued += 1;
    entry.status = 200;
    const body: Record<string, unknown> = { token, access_token: token, expires_in: advertisedTtl, issued_at: new Date().toISOString() };
    if (tr.method === 'POST') body.scope = tr.scopes.join(' ');
    if (tr.wantsRefresh && tr.user) {
      const refresh = randomBytes(16).toString('hex');
      refreshTokens.set(refresh, tr.user);
      body.refresh_token = refresh;
    }
    sendJson(res, 200, body);
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://token').pathname;
    if (path !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) return void sendJson(res, 404, { error: 'not found' });
    parse(req).then((tr) => {
      const entry: TokenRequestLogEntry = { method: tr.method, user: tr.user ?? undefined, service: tr.service, scopes: tr.scopes, status: 0, grantType: tr.grantType };
      log.push(entry);
      respond(res, tr, entry);
    }, () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url, realm: `${url}/token`, issuer, service, certPem: signer.certPem, keyId: signer.keyId,
    requests: () => log.map((e) => ({ ...e, scopes: [...e.scopes] })),
    tokenCount: () => issued,
    setTtl: (s, advertised) => {
      ttl = s;
      advertisedTtl = advertised ?? s;
    },
    mint,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
