/**
 * Tree walks (test/fixtures/walk-tree.py) and what a layer's tree must look like once served:
 * the same as `tar -x` of it, with whiteouts in overlay form and implicit dirs at the epoch.
 * Shared by the lazy mount and the local unpack tests.
 */
import { fileURLToPath } from 'node:url';
import { execOk } from './exec.js';

export const fixture = (name: string): string => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));

export interface Walked {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime_ns: string;
  nlink: number;
  ino: number;
  size?: number;
  target?: string;
  rdev?: [number, number];
  xattrs: Record<string, string>;
  sha256?: string;
}
export type Tree = Record<string, Walked>;

/** Dirs the fixture tar never lists: tar -x stamps them with the extraction time, we with the epoch. */
export const IMPLICIT = ['implicit', 'implicit/a', 'implicit/a/b', 'abs'];
export const OPAQUE = '.wh..wh..opq';

export async function walk(root: string): Promise<Tree> {
  const res = await execOk('python3', [fixture('walk-tree.py'), root], { timeoutMs: 600_000 });
  return JSON.parse(res.stdout) as Tree;
}

export const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '.');
export const baseOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** What a served layer must look like given its `tar -x` tree. */
export function expectedFromExtract(x: Tree): Tree {
  const out: Tree = {};
  for (const [p, e] of Object.entries(x)) {
    const base = baseOf(p);
    if (base === OPAQUE || base.startsWith('.wh.')) continue;
    out[p] = { ...e, xattrs: { ...e.xattrs } };
  }
  for (const [p, e] of Object.entries(x)) {
    const base = baseOf(p);
    if (base === OPAQUE) out[parentOf(p)].xattrs['trusted.overlay.opaque'] = Buffer.from('y').toString('hex');
    else if (base.startsWith('.wh.')) {
      const name = parentOf(p) === '.' ? base.slice(4) : `${parentOf(p)}/${base.slice(4)}`;
      out[name] = { type: 'char', mode: 0, uid: e.uid, gid: e.gid, mtime_ns: e.mtime_ns, nlink: 1, ino: -1, rdev: [0, 0], xattrs: {} };
    }
  }
  for (const p of IMPLICIT) out[p].mtime_ns = '0';
  return out;
}
