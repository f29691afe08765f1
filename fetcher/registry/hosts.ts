import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { invalidArgument } from '../../errors/errors.js';
import { DEFAULT_DOMAIN, hostnameOf } from './reference.js';

/**
 * Registry hosts as containerd's `certs.d` layout describes them
 * (`<config_path>/<host>/hosts.toml`): mirrors in file order, then the upstream `server`.
 */
export type Capability = 'pull' | 'resolve' | 'push';

export interface HostTls {
  /** CA certificate file paths, added to the system CAs. */
  caFiles: string[];
  /** Client certificate and key file paths (key may be absent when the cert file holds both). */
  clients: { cert: string; key?: string }[];
  skipVerify: boolean;
}

export interface RegistryHost {
  scheme: 'http' | 'https';
  /** host[:port] as in a URL authority (IPv6 in brackets). */
  host: string;
  /** API path prefix, normally `/v2`. */
  path: string;
  capabilities: Set<Capability>;
  tls: HostTls;
  headers: Record<string, string[]>;
  /** True for a mirror (a host other than the reference's registry): requests carry `?ns=<registry>`. */
  mirror: boolean;
}

export interface HostsOptions {
  /** true: all hosts over plain HTTP; a list: these hosts (host or host:port). */
  plainHttp?: boolean | string[];
}

const ALL_CAPS: Capability[] = ['pull', 'resolve', 'push'];
const LOCALHOSTS = new Set(['localhost', '127.0.0.1', '::1']);

function isPlainHttp(hostPort: string, opts: HostsOptions): boolean {
  if (opts.plainHttp === true) return true;
  if (Array.isArray(opts.plainHttp) && (opts.plainHttp.includes(hostPort) || opts.plainHttp.includes(hostnameOf(hostPort)))) return true;
  return LOCALHOSTS.has(hostnameOf(hostPort));
}

/** The upstream host containerd uses with no hosts.toml: docker.io is served by registry-1.docker.io. */
export function defaultHost(registry: string, opts: HostsOptions = {}): RegistryHost {
  const host = registry === DEFAULT_DOMAIN ? 'registry-1.docker.io' : registry;
  return {
    scheme: isPlainHttp(registry, opts) ? 'http' : 'https',
    host,
    path: '/v2',
    capabilities: new Set(ALL_CAPS),
    tls: { caFiles: [], clients: [], skipVerify: false },
    headers: {},
    mirror: false,
  };
}

/** containerd also looks for `host_port` directories, for file systems where `:` is not allowed. */
export function hostDirCandidates(configPath: string, registry: string): string[] {
  const out: string[] = [];
  const colon = registry.lastIndexOf(':');
  if (colon > 0 && !registry.endsWith(']')) out.push(join(configPath, `${registry.slice(0, colon)}_${registry.slice(colon + 1)}`));
  out.push(join(configPath, registry), join(configPath, '_default'));
  return out;
}

type TomlValue = unknown;

function strings(v: TomlValue, what: string): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw invalidArgument(`${what}: expected a string or a list of strings`);
}

function resolvePath(dir: string, p: string): string {
  return isAbsolute(p) ? p : join(dir, p);
}

function parseClients(v: TomlValue, dir: string, what: string): HostTls['clients'] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [{ cert: resolvePath(dir, v) }];
  if (!Array.isArray(v)) throw invalidArgument(`${what}.client: expected a path, a list of paths or of [cert, key] pairs`);
  return v.map((e: unknown) => {
    if (typeof e === 'string') return { cert: resolvePath(dir, e) };
    if (Array.isArray(e) && e.length === 2 && e.every((s) => typeof s === 'string')) {
      return { cert: resolvePath(dir, e[0] as string), key: resolvePath(dir, e[1] as string) };
    }
    throw invalidArgument(`${what}.client: entries must be a path or a [cert, key] pair`);
  });
}

function parseHeaders(v: TomlValue, what: string): Record<string, string[]> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(`${what}.header: expected a table`);
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries(v)) out[k] = strings(val, `${what}.header.${k}`);
  return out;
}

function parseCapabilities(v: TomlValue, what: string): Set<Capability> {
  if (v === undefined) return new Set(ALL_CAPS);
  const caps = strings(v, `${what}.capabilities`);
  for (const c of caps) if (!ALL_CAPS.includes(c as Capability)) throw invalidArgument(`${what}.capabilities: unknown capability ${JSON.stringify(c)}`);
  return new Set(caps as Capability[]);
}

/** `https://host:port/path` (a bare `host` means https) into scheme, authority and API path. */
function parseServerUrl(s: string, overridePath: boolean, what: string, opts: HostsOptions): Pick<RegistryHost, 'scheme' | 'host' | 'path'> {
  const hasScheme = /^[a-z]+:\/\//i.test(s);
  let u: URL;
  try {
    u = new URL(hasScheme ? s : `https://${s}`);
  } catch {
    throw invalidArgument(`${what}: ${JSON.stringify(s)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidArgument(`${what}: scheme ${u.protocol} is not http or https`);
  let scheme: 'http' | 'https' = u.protocol === 'http:' ? 'http' : 'https';
  if (!hasScheme && isPlainHttp(u.host, opts)) scheme = 'http';
  let path = u.pathname.replace(/\/+$/, '');
  if (!overridePath && !path.endsWith('/v2')) path += '/v2';
  return { scheme, host: u.host, path };
}

interface HostEntry {
  server: string;
  capabilities?: TomlValue;
  ca?: TomlValue;
  client?: TomlValue;
  skip_verify?: TomlValue;
  header?: TomlValue;
  override_path?: TomlValue;
}

function toHost(e: HostEntry, dir: string, registry: string, what: string, opts: HostsOptions, upstream: boolean): RegistryHost {
  if (e.skip_verify !== undefined && typeof e.skip_verify !== 'boolean') throw invalidArgument(`${what}.skip_verify: expected true or false`);
  const base = parseServerUrl(e.server, e.override_path === true, what, opts);
  return {
    ...base,
    capabilities: parseCapabilities(e.capabilities, what),
    tls: {
      caFiles: strings(e.ca, `${what}.ca`).map((p) => resolvePath(dir, p)),
      clients: parseClients(e.client, dir, what),
      skipVerify: e.skip_verify === true,
    },
    headers: parseHeaders(e.header, what),
    mirror: !upstream && base.host !== registry && !(registry === DEFAULT_DOMAIN && base.host === 'registry-1.docker.io'),
  };
}

/**
 * Parses one hosts.toml (pure). `dir` resolves relative `ca`/`client` paths. Without a
 * `server` key the upstream is the registry itself, as containerd does.
 */
export function parseHostsToml(text: string, registry: string, dir: string, file: string, opts: HostsOptions = {}): RegistryHost[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw invalidArgument(`${file}: not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const hosts: RegistryHost[] = [];
  const table = doc.host;
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null || Array.isArray(table)) throw invalidArgument(`${file}: [host] must be a table`);
    for (const [server, entry] of Object.entries(table as Record<string, unknown>)) {
      if (typeof entry !== 'object' || entry === null) throw invalidArgument(`${file}: host ${JSON.stringify(server)} must be a table`);
      hosts.push(toHost({ ...(entry as Omit<HostEntry, 'server'>), server }, dir, registry, `${file}: host."${server}"`, opts, false));
    }
  }
  const upstreamDefault = defaultHost(registry, opts);
  if (doc.server !== undefined && typeof doc.server !== 'string') throw invalidArgument(`${file}: server must be a string`);
  const serverUrl = typeof doc.server === 'string' ? doc.server : `${upstreamDefault.scheme}://${upstreamDefault.host}`;
  hosts.push(toHost({ ...(doc as Omit<HostEntry, 'server'>), server: serverUrl }, dir, registry, `${file}: server`, opts, true));
  return hosts;
}

/** The hosts to try for a registry, mirrors first; the default upstream when no hosts.toml applies. */
export async function loadHosts(configPath: string | undefined, registry: string, opts: HostsOptions = {}): Promise<RegistryHost[]> {
  if (configPath) {
    for (const dir of hostDirCandidates(configPath, registry)) {
      const file = join(dir, 'hosts.toml');
      const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
        throw invalidArgument(`${file}: cannot read: ${e.code ?? e.message}`);
      });
      if (text !== undefined) return parseHostsToml(text, registry, dir, file, opts);
    }
  }
  return [defaultHost(registry, opts)];
}

export function hostBaseUrl(h: RegistryHost): string {
  return `${h.scheme}://${h.host}${h.path}`;
}
