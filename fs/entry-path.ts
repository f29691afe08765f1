/** Validation of tar entry names before they become paths in the mounted tree. */
import { invalidArgument } from '../errors/errors.js';

/**
 * The components of a tar name. Leading `/` and `./` are stripped (tar convention: names are
 * relative to the extraction dir), `.` components are dropped, a trailing `/` is allowed;
 * `..`, empty components and NUL are refused so nothing can point outside the layer.
 * `[]` is the root itself (`./`).
 */
export function entryComponents(name: string, what: string): string[] {
  if (name.includes('\0')) throw invalidArgument(`${what} ${JSON.stringify(name)}: NUL in name`);
  const stripped = name.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
  if (stripped === '' || stripped === '.') {
    if (name === '') throw invalidArgument(`${what}: empty name`);
    return [];
  }
  const out: string[] = [];
  for (const c of stripped.split('/')) {
    if (c === '.') continue;
    if (c === '') throw invalidArgument(`${what} ${JSON.stringify(name)}: empty path component`);
    if (c === '..') throw invalidArgument(`${what} ${JSON.stringify(name)}: ".." component`);
    out.push(c);
  }
  return out;
}
