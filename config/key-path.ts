/** Key paths as a user would write them in TOML, and TOML type names of parsed values. */

/** A path segment: a table key, or an index into an array of tables. */
export type Segment = string | number;

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export function formatKeyPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += (out === '' ? '' : '.') + (BARE_KEY.test(seg) ? seg : JSON.stringify(seg));
  }
  return out;
}

/** The TOML type of a value parsed by smol-toml with integersAsBigInt. */
export function tomlTypeOf(v: unknown): string {
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return 'float';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'datetime';
  return 'table';
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return tomlTypeOf(v) === 'table' && v !== null && typeof v === 'object';
}
