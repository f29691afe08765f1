/** Device nodes and fifos: Node has no mknod(2), so coreutils' mknod does it (paths are absolute). */
import { spawnSync } from 'node:child_process';
import { internal } from '../errors/errors.js';
import { devMajor, devMinor } from '../fs/makedev.js';
import type { InodeKind } from '../fs/inode.js';

/** Created 0600: the caller sets owner, then the real mode, so chown cannot clear setuid bits. */
export function makeSpecialSync(kind: InodeKind, rdev: number, path: string): void {
  const args = ['-m', '600', '--', path];
  if (kind === 'char' || kind === 'block') args.push(kind === 'char' ? 'c' : 'b', String(devMajor(rdev)), String(devMinor(rdev)));
  else if (kind === 'fifo') args.push('p');
  else throw internal(`${path}: ${kind} is not a special file`);
  const res = spawnSync('mknod', args, { encoding: 'utf8' });
  if (res.status !== 0) throw internal(`creating ${kind} ${path}: ${res.error?.message ?? res.stderr.trim()}`);
}
