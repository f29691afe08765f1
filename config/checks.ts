/** Value rules shared by several schema keys. Each returns the reason for rejection or undefined. */
import { isAbsolute } from 'node:path';
import type { ScalarValue } from './schema-types.js';

export function absolutePath(v: ScalarValue): string | undefined {
  return typeof v === 'string' && isAbsolute(v) ? undefined : `must be an absolute path, got ${JSON.stringify(v)}`;
}

export function emptyOrAbsolutePath(v: ScalarValue): string | undefined {
  return v === '' ? undefined : absolutePath(v);
}

/** containerd's hosts dirs are a ':'-separated list, as in upstream's filepath.SplitList use. */
export function pathList(v: ScalarValue): string | undefined {
  if (v === '') return undefined;
  const bad = String(v)
    .split(':')
    .find((p) => !isAbsolute(p));
  return bad === undefined ? undefined : `every ':'-separated entry must be an absolute path, got ${JSON.stringify(bad)}`;
}

export function hostName(v: ScalarValue): string | undefined {
  const s = String(v);
  if (s === '') return 'must not be empty';
  if (s.includes('://')) return `must be a host[:port] without a scheme (use insecure = true for http), got ${JSON.stringify(s)}`;
  if (/\s/.test(s)) return `must not contain whitespace, got ${JSON.stringify(s)}`;
  return undefined;
}

/** Docker's `auth` field: base64 of "user:password". The value itself is never echoed. */
export function basicAuthField(v: ScalarValue): string | undefined {
  const s = String(v);
  if (s === '') return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return 'must be base64 of "user:password"';
  return Buffer.from(s, 'base64').toString('utf8').includes(':') ? undefined : 'must be base64 of "user:password" (no ":" found)';
}
