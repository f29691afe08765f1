/** Finds and removes mounts a test left under a directory (overlay, bind, FUSE). */
import { readFile } from 'node:fs/promises';
import { execCapture } from './exec.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

function unescapeMountInfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export async function listMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superopts
    const [left, right] = line.split(' - ');
    const mountPoint = unescapeMountInfo(left.split(' ')[4]);
    const [fsType, source] = (right ?? '').split(' ');
    out.push({ mountPoint, fsType, source: unescapeMountInfo(source ?? '') });
  }
  return out;
}

export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return (await listMounts()).filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(prefix));
}

/** Unmounts everything under dir, deepest first; FUSE mounts via fusermount, others lazily. */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const mounts = (await mountsUnder(dir)).sort((a, b) => b.mountPoint.length - a.mountPoint.length);
  const failures: string[] = [];
  for (const m of mounts) {
    const res = m.fsType.startsWith('fuse')
      ? await execCapture('fusermount', ['-u', '-z', m.mountPoint])
      : await execCapture('umount', ['-l', m.mountPoint]);
    if (res.code !== 0) {
      const lazy = await execCapture('umount', ['-l', m.mountPoint]);
      if (lazy.code !== 0) failures.push(`${m.mountPoint}: ${lazy.stderr.trim()}`);
    }
  }
  return failures;
}
