/**
 * Builds the inode tree a layer's FUSE mount serves from its TOC, with the result `tar -x`
 * (GNU tar 1.34, as root) would leave on disk:
 * - a later entry for a path replaces the earlier one; a dir over a dir keeps the children,
 *   takes the new metadata and adds the new xattrs to the old (tar only calls setxattr);
 * - a non-dir over a non-empty dir is dropped (tar's rmdir fails), over an empty dir it wins;
 * - an entry below a regular file is dropped (tar: "Not a directory"); below a symlink it is
 *   refused, since tar would follow the link, possibly out of the layer;
 * - a hardlink shares the inode its target has at that moment; a later entry for the target
 *   path makes a new inode (tar unlinks first), leaving the link with the old one;
 * - parent dirs the tar never lists are created 0755 root:root with mtime at the Unix epoch
 *   (tar uses the extraction time; the epoch keeps every mount of a layer identical).
 * Whiteouts become what overlayfs expects (char device 0/0, opaque xattr).
 */
import { invalidArgument } from '../errors/errors.js';
import type { UnixTime } from '../ztoc/go-time.js';
import type { FileMetadata } from '../ztoc/types.js';
import { entryComponents } from './entry-path.js';
import { parseGoTime } from './go-time-parse.js';
import { newInode, setXattr, type Inode, type InodeTree } from './inode.js';
import { makedev } from './makedev.js';
import { finishTree } from './tree-finish.js';
import { classifyName, OPAQUE_XATTR } from './whiteout.js';

export interface InodeTreeOptions {
  /** The index's disable-xattrs annotation: skip xattrs, unless the layer turns out to have some. */
  disableXattrs?: boolean;
}

const XATTR_PREFIX = 'SCHILY.xattr.';
const IMPLICIT_DIR_PERM = 0o755;

export function buildInodeTree(toc: readonly FileMetadata[], opts: InodeTreeOptions = {}): InodeTree {
  const b = new TreeBuilder();
  for (const e of toc) b.add(e);
  let xattrsEnabled = true;
  if (opts.disableXattrs) {
    if (b.sawXattr) b.warnings.push('layer is marked disable-xattrs but has xattrs or opaque dirs: serving them');
    else xattrsEnabled = false;
  }
  return finishTree(b.root, xattrsEnabled, b.warnings);
}

class TreeBuilder {
  readonly root: Inode = newInode('dir', IMPLICIT_DIR_PERM, '.');
  readonly warnings: string[] = [];
  sawXattr = false;
  /** Layers repeat the same few mtimes; parsed values are shared (they are never mutated). */
  private readonly times = new Map<string, UnixTime>();

  constructor() {
    this.root.implicit = true;
  }

  add(e: FileMetadata): void {
    // Only errors and warnings name the entry: quoting 44,000 names up front cost 15-45 ms.
    const what = (): string => `tar entry ${JSON.stringify(e.name)}`;
    const comps = entryComponents(e.name, 'tar entry');
    if (comps.length === 0) {
      if (e.type !== 'dir') throw invalidArgument(`${what()}: names the layer root but is a ${e.type}`);
      this.mergeDir(this.root, this.inodeFor(e, what));
      return;
    }
    const parent = this.parentDir(comps, what);
    if (!parent) return;
    const base = comps[comps.length - 1];
    const nk = classifyName(base);
    if (nk.kind === 'opaque') {
      setXattr(parent, OPAQUE_XATTR, Buffer.from('y'));
      this.sawXattr = true;
      return;
    }
    if (nk.kind === 'whiteout') {
      if (nk.target === '' || nk.target === '.' || nk.target === '..') throw invalidArgument(`${what()}: bad whiteout name`);
      this.place(parent, nk.target, this.whiteoutFor(e), what);
      return;
    }
    const node = e.type === 'hardlink' ? this.linkTarget(e, what) : this.inodeFor(e, what);
    this.place(parent, base, node, what);
  }

  /** The directory holding the last component, creating unlisted ones; null when tar would drop the entry. */
  private parentDir(comps: string[], what: () => string): Inode | null {
    let dir = this.root;
    for (let i = 0; i < comps.length - 1; i++) {
      const children = dir.children as Map<string, Inode>;
      let next = children.get(comps[i]);
      if (!next) {
        next = newInode('dir', IMPLICIT_DIR_PERM, comps.slice(0, i + 1).join('/'));
        next.implicit = true;
        children.set(comps[i], next);
      } else if (next.kind === 'symlink') {
        throw invalidArgument(`${what()}: parent ${JSON.stringify(comps.slice(0, i + 1).join('/'))} is a symlink`);
      } else if (next.kind !== 'dir') {
        this.warnings.push(`${what()} dropped: parent ${comps.slice(0, i + 1).join('/')} is not a directory`);
        return null;
      }
      dir = next;
    }
    return dir;
  }

  private place(parent: Inode, name: string, node: Inode, what: () => string): void {
    const children = parent.children as Map<string, Inode>;
    const old = children.get(name);
    if (old === node) return;
    if (old?.kind === 'dir') {
      if (node.kind === 'dir') return this.mergeDir(old, node);
      if ((old.children as Map<string, Inode>).size > 0) {
        this.warnings.push(`${what()} dropped: it would replace a non-empty directory`);
        return;
      }
    }
    children.set(name, node);
  }

  private mergeDir(old: Inode, next: Inode): void {
    old.mode = next.mode;
    old.uid = next.uid;
    old.gid = next.gid;
    old.mtime = next.mtime;
    old.implicit = false;
    old.source = next.source;
    for (const [k, v] of next.xattrs ?? []) setXattr(old, k, v);
  }

  private linkTarget(e: FileMetadata, what: () => string): Inode {
    const comps = entryComponents(e.linkname, `${what()} link target`);
    let node: Inode | undefined = this.root;
    for (const c of comps) node = node?.children?.get(c);
    if (!node) throw invalidArgument(`${what()}: hardlink target ${JSON.stringify(e.linkname)} does not exist`);
    if (node.kind === 'dir') throw invalidArgument(`${what()}: hardlink target ${JSON.stringify(e.linkname)} is a directory`);
    return node;
  }

  private time(s: string): UnixTime {
    let v = this.times.get(s);
    if (!v) {
      v = parseGoTime(s);
      this.times.set(s, v);
    }
    return v;
  }

  private whiteoutFor(e: FileMetadata): Inode {
    const n = newInode('char', 0, e.name);
    n.uid = e.uid;
    n.gid = e.gid;
    n.mtime = this.time(e.modTime);
    return n;
  }

  private inodeFor(e: FileMetadata, what: () => string): Inode {
    if (e.type === 'hardlink') throw invalidArgument(`${what()}: unexpected hardlink`);
    const n = newInode(e.type, e.type === 'symlink' ? 0o777 : e.mode, e.name);
    n.uid = e.uid;
    n.gid = e.gid;
    try {
      n.mtime = this.time(e.modTime);
    } catch (err) {
      throw invalidArgument(`${what()}: ${(err as Error).message}`, err);
    }
    if (e.type === 'reg') {
      n.size = e.uncompressedSize;
      n.dataOffset = e.uncompressedOffset;
    } else if (e.type === 'symlink') {
      if (e.linkname === '') throw invalidArgument(`${what()}: symlink with an empty target`);
      n.linkTarget = e.linkname;
      n.size = Buffer.byteLength(e.linkname);
    } else if (e.type === 'char' || e.type === 'block') {
      n.rdev = makedev(e.devmajor, e.devminor, what());
    }
    for (const x of e.xattrs) {
      if (!x.key.startsWith(XATTR_PREFIX) || x.key.length === XATTR_PREFIX.length) continue;
      setXattr(n, x.key.slice(XATTR_PREFIX.length), Buffer.from(x.value));
      this.sawXattr = true;
    }
    return n;
  }
}
