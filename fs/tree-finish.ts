/** Freezes a built tree: inode numbers, link counts, the path index and readdir listings. */
import type { Inode, InodeTree } from './inode.js';

export function finishTree(root: Inode, xattrsEnabled: boolean, warnings: string[]): InodeTree {
  const byPath = new Map<string, Inode>();
  const inodes: Inode[] = [];
  let totalSize = 0;
  const visit = (n: Inode): void => {
    if (n.ino !== 0) {
      n.nlink++;
      return;
    }
    n.ino = inodes.length + 1;
    inodes.push(n);
    n.nlink = 1;
    if (n.kind === 'reg') totalSize += n.size;
    if (!xattrsEnabled) n.xattrs = null;
  };
  visit(root);
  byPath.set('/', root);
  // Iterative depth-first walk: a layer can nest deeper than the JS stack is comfortable with.
  const stack: Array<{ dir: Inode; path: string }> = [{ dir: root, path: '' }];
  while (stack.length > 0) {
    const { dir, path } = stack.pop() as { dir: Inode; path: string };
    const children = dir.children as Map<string, Inode>;
    let subdirs = 0;
    const later: Array<{ dir: Inode; path: string }> = [];
    for (const [name, child] of children) {
      const childPath = `${path}/${name}`;
      byPath.set(childPath, child);
      visit(child);
      if (child.kind === 'dir') {
        subdirs++;
        later.push({ dir: child, path: childPath });
      }
    }
    dir.nlink = 2 + subdirs;
    dir.listing = ['.', '..', ...children.keys()];
    for (let i = later.length - 1; i >= 0; i--) stack.push(later[i]);
  }
  return { root, byPath, inodes, xattrsEnabled, warnings, totalSize };
}
