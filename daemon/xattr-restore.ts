/**
 * Extended attributes through one `setfattr -h --restore=-` process (Debian package attr):
 * Node has no xattr API, and one process per file would cost more than the unpack itself.
 * The input is getfattr's dump format; paths and names are octal-escaped (setfattr unquotes
 * `\ooo` in both), values are base64 (`0s`), so any byte survives.
 */
import { spawnSync } from 'node:child_process';
import { failedPrecondition, internal } from '../errors/errors.js';

export interface XattrTarget {
  path: string;
  xattrs: Map<string, Buffer>;
}

/** Escapes every byte a dump line could misread: controls, space, `\`, `=`, `"`, non-ASCII. */
export function quoteDump(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const plain = b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x3d && b !== 0x22;
    out += plain ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

export function restoreScript(targets: readonly XattrTarget[]): string {
  const parts: string[] = [];
  for (const t of targets) {
    parts.push(`# file: ${quoteDump(t.path)}\n`);
    for (const [name, value] of t.xattrs) parts.push(`${quoteDump(name)}=0s${value.toString('base64')}\n`);
    parts.push('\n');
  }
  return parts.join('');
}

/** "Operation not supported" is skipped, as containerd's applier skips ENOTSUP; returns those lines. */
const UNSUPPORTED = /Operation not supported/;

/** Runs a script from restoreScript(); returns the skipped "not supported" lines. */
export function restoreXattrsSync(script: string): string[] {
  if (script === '') return [];
  const res = spawnSync('setfattr', ['-h', '--restore=-'], { input: script, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.error) {
    const e = res.error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw failedPrecondition('setting xattrs: the setfattr command is not installed (Debian package attr)', e);
    throw internal(`setting xattrs: setfattr: ${e.message}`, e);
  }
  const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
  const fatal = lines.filter((l) => !UNSUPPORTED.test(l));
  if (fatal.length > 0 || (res.status !== 0 && lines.length === 0)) {
    const first = fatal[0] ?? `exited with ${res.status ?? res.signal}`;
    throw internal(`setting xattrs: setfattr failed${fatal.length > 1 ? ` (${fatal.length} errors, first)` : ''}: ${first}`);
  }
  return lines;
}
