/**
 * The on-disk layout of snapshots: `<root>/snapshots/<id>/{fs,work}`. `fs` is the upper dir of
 * an active snapshot and the lower dir it becomes once committed (for a remote layer, its FUSE
 * mountpoint); `work` is overlayfs's work dir.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export class SnapshotDirs {
  readonly base: string;

  constructor(root: string) {
    this.base = join(root, 'snapshots');
  }

  dir(id: number): string {
    return join(this.base, String(id));
  }

  fs(id: number): string {
    return join(this.dir(id), 'fs');
  }

  work(id: number): string {
    return join(this.dir(id), 'work');
  }

  async create(id: number): Promise<void> {
    await mkdir(this.fs(id), { recursive: true, mode: 0o755 });
    await mkdir(this.work(id), { recursive: true, mode: 0o711 });
  }

  async remove(id: number): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }

  /**
   * Removes snapshot dirs whose id is not in `known`. A dir with anything mounted at or under
   * it is left alone (removing through a live mount would delete a layer's files); it is
   * returned so the caller can report it.
   */
  async cleanup(known: ReadonlySet<number>): Promise<{ removed: number[]; busy: number[] }> {
    const entries = await readdir(this.base).catch(() => [] as string[]);
    const mounted = await mountPoints();
    const removed: number[] = [];
    const busy: number[] = [];
    for (const name of entries) {
      if (!/^\d+$/.test(name) || known.has(Number(name))) continue;
      const dir = join(this.base, name);
      if (mounted.some((m) => m === dir || m.startsWith(`${dir}/`))) {
        busy.push(Number(name));
        continue;
      }
      await rm(dir, { recursive: true, force: true });
      removed.push(Number(name));
    }
    return { removed, busy };
  }
}

async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').filter(Boolean).map((line) => unescape(line.split(' ')[4] ?? ''));
}
