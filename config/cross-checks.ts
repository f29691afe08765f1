/** Rules that involve more than one key, checked on the resolved config. */
import { isAbsolute } from 'node:path';
import type { Segment } from './key-path.js';
import type { Config } from './types.js';
import type { Problem } from './validate.js';

const value = (path: Segment[], detail: string): Problem => ({ kind: 'value', path, detail });

export function crossCheck(cfg: Config): Problem[] {
  return [...waitOrder(cfg), ...metricsAddress(cfg), ...clientCertPairs(cfg)];
}

function waitOrder(cfg: Config): Problem[] {
  const out: Problem[] = [];
  for (const name of ['http', 'blob'] as const) {
    const { min_wait_msec: min, max_wait_msec: max } = cfg[name];
    // blob values equal to http's were inherited (or restate them): the http row already reports them.
    const inherited = name === 'blob' && min === cfg.http.min_wait_msec && max === cfg.http.max_wait_msec;
    if (min > max && !inherited) out.push(value([name, 'min_wait_msec'], `must be <= ${name}.max_wait_msec (${max}), got ${min}`));
  }
  return out;
}

function metricsAddress(cfg: Config): Problem[] {
  const addr = cfg.metrics_address;
  if (addr === '') return [];
  if (cfg.metrics_network === 'unix') {
    return isAbsolute(addr) ? [] : [value(['metrics_address'], `must be an absolute socket path with metrics_network "unix", got ${JSON.stringify(addr)}`)];
  }
  const m = /^(.*):(\d{1,5})$/.exec(addr);
  const ok = m !== null && Number(m[2]) <= 65535;
  return ok ? [] : [value(['metrics_address'], `must be host:port with metrics_network "tcp", got ${JSON.stringify(addr)}`)];
}

function clientCertPairs(cfg: Config): Problem[] {
  const out: Problem[] = [];
  for (const [host, hc] of Object.entries(cfg.registry.configs)) {
    const { cert_file: cert, key_file: key } = hc.tls;
    if (cert !== '' && key === '') out.push(value(['registry', 'configs', host, 'tls', 'cert_file'], 'needs key_file as well'));
    if (key !== '' && cert === '') out.push(value(['registry', 'configs', host, 'tls', 'key_file'], 'needs cert_file as well'));
  }
  return out;
}
