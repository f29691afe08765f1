import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../errors/errors.js';
import { DEFAULT_DOMAIN } from './reference.js';

/**
 * Where registry credentials come from: a static `user:pass`, ~/.docker/config.json (inline
 * `auth`, `credsStore`, `credHelpers`), or a chain of those. Secrets never go into messages.
 */
export interface Credential {
  username: string;
  password: string;
}

export interface CredentialSource {
  /** Credentials for a registry host (`docker.io`, `host:port`); undefined = anonymous. */
  get(registry: string): Promise<Credential | undefined>;
}

export const anonymous: CredentialSource = { get: async () => undefined };

/** `USER:PASS` as given to `--user`; the password may contain colons. */
export function parseUserPass(s: string): Credential {
  const i = s.indexOf(':');
  if (i <= 0) throw invalidArgument('--user: expected USER:PASS');
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

/** The same credential for every host, or only for the listed hosts. */
export function staticCredentials(cred: Credential, hosts?: string[]): CredentialSource {
  return { get: async (registry) => (!hosts || hosts.includes(registry) ? cred : undefined) };
}

export function chainCredentials(...sources: CredentialSource[]): CredentialSource {
  return {
    get: async (registry) => {
      for (const s of sources) {
        const c = await s.get(registry);
        if (c) return c;
      }
      return undefined;
    },
  };
}

export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** The key docker writes for a registry in config.json (Docker Hub keeps its legacy URL). */
export function dockerConfigKey(registry: string): string {
  return registry === DEFAULT_DOMAIN ? DOCKER_HUB_KEY : registry;
}

/** `https://host/v1/` or `host` to `host`, so entries written with a scheme or path still match. */
function normaliseAuthKey(key: string): string {
  const k = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return k === 'index.docker.io' || k === 'registry-1.docker.io' ? DEFAULT_DOMAIN : k;
}

export function parseDockerConfig(text: string, file: string): DockerConfig {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as DockerConfig;
  } catch (e) {
    throw invalidArgument(`${file}: not a valid docker config: ${(e as Error).message}`);
  }
}

/** The inline credential in `auths` for a registry: base64 `user:pass` in `auth`, or username/password. */
export function inlineAuth(cfg: DockerConfig, registry: string, file: string): Credential | undefined {
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (normaliseAuthKey(key) !== registry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) throw invalidArgument(`${file}: auths entry for ${registry} has a malformed auth field`);
      return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
    if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Which credential helper serves a registry: credHelpers[registry], else credsStore. */
export function helperFor(cfg: DockerConfig, registry: string): string | undefined {
  for (const [key, helper] of Object.entries(cfg.credHelpers ?? {})) if (normaliseAuthKey(key) === registry) return helper;
  return cfg.credsStore || undefined;
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin (docker's credential helper protocol). */
export function runCredentialHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential | undefined> {
  const bin = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(failedPrecondition(`credential helper ${bin}: cannot run: ${e.code ?? e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      // The protocol reports a missing entry as exit 1 with this text on stdout.
      if (code !== 0 && /credentials not found/i.test(text)) return resolve(undefined);
      if (code !== 0) return reject(failedPrecondition(`credential helper ${bin} exited with ${code} for ${serverUrl}`));
      try {
        const r = JSON.parse(text) as { Username?: string; Secret?: string };
        if (typeof r.Username !== 'string' || typeof r.Secret !== 'string') throw new Error('missing Username or Secret');
        resolve({ username: r.Username, password: r.Secret });
      } catch {
        reject(failedPrecondition(`credential helper ${bin}: output for ${serverUrl} is not the expected JSON`));
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
  });
}

export interface DockerConfigOptions {
  /** Path of config.json; default $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
  path?: string;
  env?: NodeJS.ProcessEnv;
}

export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** Credentials from a docker config file, read on each lookup (it is small and may change). */
export function dockerConfigCredentials(opts: DockerConfigOptions = {}): CredentialSource {
  const env = opts.env ?? process.env;
  const file = opts.path ?? defaultDockerConfigPath(env);
  return {
    get: async (registry) => {
      const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw failedPrecondition(`${file}: cannot read: ${e.code ?? e.message}`);
      });
      if (text === undefined) return undefined;
      const cfg = parseDockerConfig(text, file);
      const helper = helperFor(cfg, registry);
      if (helper) {
        const c = await runCredentialHelper(helper, dockerConfigKey(registry), env);
        if (c) return c;
      }
      return inlineAuth(cfg, registry, file);
    },
  };
}

/** The usual chain: `--user` (when given) before the docker config. */
export function defaultCredentials(user?: string, opts: DockerConfigOptions = {}): CredentialSource {
  const cfg = dockerConfigCredentials(opts);
  return user ? chainCredentials(staticCredentials(parseUserPass(user)), cfg) : cfg;
}
