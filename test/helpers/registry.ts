/**
 * A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 at a free
 * port, storage in a temp dir. Its config is written as JSON, which its YAML parser accepts.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from './exec.js';
import { makeTempDir, removeDir } from './tmp.js';
import { freePort, startService, waitFor } from './process.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  /** PEM bundle of the certificates whose keys sign the tokens. */
  rootCertBundle: string;
}

export interface RegistryOptions {
  /** htpasswd file content (bcrypt lines, see htpasswdLine). */
  htpasswd?: string;
  /** PEM certificate and key: the registry then serves HTTPS; clientCa (PEM) makes it require client certificates. */
  tls?: { cert: string; key: string; clientCa?: string };
  tokenAuth?: TokenAuthConfig;
  /** Merged over the generated config (objects deeply, other values replaced). */
  extraConfig?: Record<string, unknown>;
  /** IPv4 address to listen on and to name in host/url; default 127.0.0.1. */
  listenAddress?: string;
  /** Run the registry under this command, e.g. ['ip', 'netns', 'exec', NAME] (it must exec the registry, so kill() reaches it). */
  commandPrefix?: string[];
}

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

export interface Registry {
  url: string;
  host: string;
  port: number;
  root: string;
  logs(): string;
  /**
   * Parsed access-log lines (combined log format), in arrival order. The registry writes a line
   * after it has answered, so this first waits until its log has been quiet for a moment.
   */
  accessLog(): Promise<AccessLogEntry[]>;
  stop(): Promise<void>;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Json, v) : v;
  return out;
}

/** One htpasswd line with a bcrypt hash, the only kind docker-registry accepts. */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  const res = await execOk('htpasswd', ['-nbB', user, password]);
  return res.stdout.trim();
}

const ACCESS_RE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/;

export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS_RE.exec(line);
    if (m) out.push({ method: m[1], path: m[2], status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) });
  }
  return out;
}

async function writeAuthFiles(root: string, opts: RegistryOptions): Promise<Json> {
  const config: Json = {};
  if (opts.htpasswd !== undefined) {
    const path = join(root, 'htpasswd');
    await writeFile(path, opts.htpasswd.endsWith('\n') ? opts.htpasswd : `${opts.htpasswd}\n`);
    config.auth = { htpasswd: { realm: 'soci-test', path } };
  }
  if (opts.tokenAuth) {
    const bundle = join(root, 'token-ca.pem');
    await writeFile(bundle, opts.tokenAuth.rootCertBundle);
    const { realm, service, issuer } = opts.tokenAuth;
    config.auth = { token: { realm, service, issuer, rootcertbundle: bundle } };
  }
  if (opts.tls) {
    const certificate = join(root, 'tls-cert.pem');
    const key = join(root, 'tls-key.pem');
    await writeFile(certificate, opts.tls.cert);
    await writeFile(key, opts.tls.key);
    const tls: Json = { certificate, key };
    if (opts.tls.clientCa !== undefined) {
      const clientCa = join(root, 'tls-client-ca.pem');
      await writeFile(clientCa, opts.tls.clientCa);
      tls.clientcas = [clientCa];
    }
    config.http = { tls };
  }
  return config;
}

/** With mTLS the probe has no client certificate: a TLS alert from the server then proves it is up. */
function probe(url: string, mtls = false): Promise<boolean> {
  const req = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const r = req(url, { method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      // 401 is a healthy registry behind auth.
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    r.on('error', (e: NodeJS.ErrnoException) => resolve(mtls && /ALERT/.test(e.code ?? '')));
    r.on('timeout', () => r.destroy());
    r.end();
  });
}

/** The log text once no new output has arrived for 60 ms (at most 1 s). */
async function settledLogs(logs: () => string): Promise<string> {
  let last = logs();
  for (let waited = 0; waited < 1000; waited += 60) {
    await new Promise((r) => setTimeout(r, 60));
    const now = logs();
    if (now.length === last.length) return now;
    last = now;
  }
  return last;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const root = await makeTempDir('soci-registry-');
  try {
    // A port free on the host is as good as any in another network namespace (nothing listens there).
    const port = await freePort();
    const host = `${opts.listenAddress ?? '127.0.0.1'}:${port}`;
    const base: Json = {
      version: 0.1,
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: join(root, 'data') },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: host, secret: 'soci-test-secret' },
    };
    const config = deepMerge(deepMerge(base, await writeAuthFiles(root, opts)), opts.extraConfig ?? {});
    const configPath = join(root, 'config.yml');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const [cmd, ...prefixArgs] = [...(opts.commandPrefix ?? []), REGISTRY_BIN];
    const service = startService(cmd, [...prefixArgs, 'serve', configPath]);
    const url = `${opts.tls ? 'https' : 'http'}://${host}`;
    const stop = async (): Promise<void> => {
      await service.kill(3000);
      await removeDir(root);
    };
    await waitFor(service, `docker-registry on ${host}`, () => probe(`${url}/v2/`, opts.tls?.clientCa !== undefined)).catch(async (e: unknown) => {
      await stop();
      throw e;
    });
    return { url, host, port, root, logs: service.logs, accessLog: async () => parseAccessLog(await settledLogs(service.logs)), stop };
  } catch (e) {
    await removeDir(root);
    throw e;
  }
}
