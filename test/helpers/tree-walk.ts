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

/** Groups of non-directory paths that share an inode, sorted. */
export function linkGroups(tree: Tree): string[][] {
  const byIno = new Map<number, string[]>();
  for (const [p, e] of Object.entries(tree)) {
    if (e.type === 'dir') continue;
    byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), p]);
  }
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort((a, b) => a[0].localeCompare(b[0]));
}

/** JSON with object keys sorted, so field order never matters. */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
}

/** Paths where `field` differs between the served tree (`side`) and `tar -x`. */
export function mismatches(got: Tree, want: Tree, field: (e: Walked) => unknown, side: string): string[] {
  const out: string[] = [];
  for (const p of new Set([...Object.keys(got), ...Object.keys(want)])) {
    const a = got[p] ? canonical(field(got[p])) : 'missing';
    const b = want[p] ? canonical(field(want[p])) : 'missing';
    if (a !== b) out.push(`${p}: ${side} ${a} != tar -x ${b}`);
  }
  return out;
}
