/**
 * Executes a MaterializeJob with synchronous file system calls (run in a worker thread: a
 * layer is tens of thousands of small operations, and sync calls from one thread cost a
 * fraction of the same calls hopping through the libuv pool).
 * Order matters: owner before mode (chown clears setuid/setgid), owner before xattrs (chown
 * clears security.capability), directory times last (creating children bumps them).
 * Files are opened O_CREAT|O_EXCL|O_NOFOLLOW and parents are directories made here, so no
 * operation can land outside the root.
 */
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, lchownSync, linkSync, mkdirSync, openSync, readSync, symlinkSync, writeSync,
} from 'node:fs';
import { internal, SociError } from '../errors/errors.js';
import { PERM_MASK } from '../fs/inode.js';
import type { Creator, MaterializeJob, PlannedNode } from './materialize-plan.js';
import { setTimesSync } from './mtime.js';
import { makeSpecialSync } from './special-files.js';
import { restoreXattrsSync } from './xattr-restore.js';

const COPY_BUF = 1 << 20;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Returns warnings (xattrs the file system does not support). */
export function runJob(job: MaterializeJob): string[] {
  for (const d of job.dirs.slice(1)) step(d.path, 'mkdir', () => mkdirSync(d.path, 0o700));
  const buf = Buffer.allocUnsafe(COPY_BUF);
  const src = openSync(job.tarPath, constants.O_RDONLY);
  try {
    const creator = { trusted: job.creator, checked: false };
    for (const n of job.nodes) step(n.path, `create ${n.kind}`, () => createNode(n, src, buf, creator));
  } finally {
    closeSync(src);
  }
  for (const l of job.links) step(l.path, 'link', () => linkSync(l.first, l.path));
  const dirs = job.rootMeta ? job.dirs : job.dirs.slice(1);
  for (const d of dirs) step(d.path, 'chown/chmod', () => ownAndMode(d));
  const warnings = restoreXattrsSync(job.xattrScript);
  for (let i = dirs.length - 1; i >= 0; i--) step(dirs[i].path, 'utimes', () => setTimesSync(dirs[i].path, dirs[i].mtime));
  return warnings;
}

/** The creator guess, checked against the first file it is used for (a default ACL would defeat the umask). */
interface CreatorState {
  trusted: Creator | null;
  checked: boolean;
}

function createNode(n: PlannedNode, src: number, buf: Buffer, creator: CreatorState): void {
  switch (n.kind) {
    case 'reg':
      return writeRegular(n, src, buf, creator);
    case 'symlink':
      symlinkSync(n.linkTarget, n.path);
      lchownSync(n.path, n.uid, n.gid);
      return setTimesSync(n.path, n.mtime);
    default:
      makeSpecialSync(n.kind, n.rdev, n.path);
      ownAndMode(n);
      return setTimesSync(n.path, n.mtime);
  }
}

/**
 * A file created with its final permissions needs no chmod when the owner is already right
 * (no chown to clear anything) and nothing is special: setuid/setgid/sticky always get an
 * explicit chmod after chown. Saves two of the seven calls per file in the common case.
 */
function writeRegular(n: PlannedNode, src: number, buf: Buffer, creator: CreatorState): void {
  const perm = n.mode & PERM_MASK;
  const c = creator.trusted;
  let ownerOk = c !== null && c.uid === n.uid && c.gid === n.gid;
  let modeOk = c !== null && ownerOk && (perm & 0o7000) === 0 && (perm & ~c.umask) === perm;
  const fd = openSync(n.path, CREATE_FLAGS, modeOk ? perm : 0o600);
  try {
    if (ownerOk && !creator.checked) {
      creator.checked = true;
      const st = fstatSync(fd);
      if (st.uid !== n.uid || st.gid !== n.gid || (st.mode & PERM_MASK) !== (modeOk ? perm : 0o600)) {
        creator.trusted = null;
        ownerOk = modeOk = false;
      }
    }
    let done = 0;
    while (done < n.size) {
      const got = readSync(src, buf, 0, Math.min(buf.length, n.size - done), n.dataOffset + done);
      if (got === 0) throw internal(`unpacking layer: the spooled tar ends inside the data of ${n.path}`);
      for (let w = 0; w < got; ) w += writeSync(fd, buf, w, got - w);
      done += got;
    }
    if (!ownerOk) fchownSync(fd, n.uid, n.gid);
    if (!modeOk) fchmodSync(fd, perm);
    setTimesSync(n.path, n.mtime, fd);
  } finally {
    closeSync(fd);
  }
}

/** Only for directories and device nodes made here: chmod(2) would follow a symlink. */
function ownAndMode(n: PlannedNode): void {
  lchownSync(n.path, n.uid, n.gid);
  chmodSync(n.path, n.mode & PERM_MASK);
}

function step(path: string, op: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof SociError) throw err;
    throw internal(`unpacking layer: ${op} ${path}: ${(err as Error).message}`, err);
  }
}
