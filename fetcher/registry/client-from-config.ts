import type { Config } from '../../config/types.js';
import { chainCredentials, defaultCredentials, staticCredentials, type CredentialSource } from './credentials.js';
import type { RegistryClientOptions } from './registry-client.js';

/** Credentials named in the config's [registry.configs."<host>".auth] sections. */
function configCredentials(config: Config): CredentialSource[] {
  return Object.entries(config.registry.configs).flatMap(([host, c]) => {
    if (c.auth.username || c.auth.password) return [staticCredentials({ username: c.auth.username, password: c.auth.password }, [host])];
    if (c.auth.auth) {
      const [username, ...rest] = Buffer.from(c.auth.auth, 'base64').toString('utf8').split(':');
      return [staticCredentials({ username, password: rest.join(':') }, [host])];
    }
    return [];
  });
}

/**
 * Registry client options from the snapshotter config, as the daemon and the CLI both use
 * them: hosts.toml under registry.config_path, [http] timeouts and retries, and credentials
 * from `user` (CLI --user), the config, then ~/.docker/config.json.
 */
export function registryOptionsFrom(config: Config, extra: { user?: string; plainHttp?: boolean } = {}): RegistryClientOptions {
  const h = config.http;
  return {
    hostsDir: config.registry.config_path || undefined,
    plainHttp: extra.plainHttp,
    credentials: chainCredentials(...configCredentials(config), defaultCredentials(extra.user)),
    timeouts: { connectMs: h.dial_timeout_msec, headersMs: h.response_header_timeout_msec, totalMs: h.request_timeout_msec },
    retries: { max: h.max_retries, baseMs: h.min_wait_msec, maxMs: h.max_wait_msec },
  };
}
