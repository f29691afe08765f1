/**
 * Writes a layer's inode tree into an empty directory the way containerd's applier leaves an
 * overlayfs snapshot. The work runs in a worker thread with synchronous calls (see
 * materialize-sync.ts), so the daemon's event loop keeps serving meanwhile.
 */
import { readFile, stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { internal, SociError } from '../errors/errors.js';
import type { FsLogger } from '../fs/fs-logger.js';
import type { InodeTree } from '../fs/inode.js';
import { planTree, type Creator } from './materialize-plan.js';
import type { WorkerReply } from './materialize-worker.js';

const WORKER_URL = new URL('./materialize-worker.js', import.meta.url);

export async function materializeTree(tree: InodeTree, tarPath: string, root: string, logger: FsLogger): Promise<void> {
  const job = planTree(tree, root, tarPath, await creatorOf(root));
  const res = await runWorker(job);
  if (!res.ok) throw new SociError(res.kind, res.message);
  for (const w of res.warnings) logger.warn({ dir: root, err: w }, 'xattr not supported by the snapshot file system: skipped');
}

function runWorker(job: ReturnType<typeof planTree>): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: job });
    let reply: WorkerReply | null = null;
    worker.once('message', (m: WorkerReply) => (reply = m));
    worker.once('error', (err) => reject(internal(`unpacking layer into ${root(job)}: worker failed: ${err.message}`, err)));
    worker.once('exit', (code) => {
      if (reply) resolve(reply);
      else reject(internal(`unpacking layer into ${root(job)}: worker exited with ${code} without a result`));
    });
  });
}

/**
 * Who owns a file created under `root`, when that is certain: not when root is setgid (new
 * entries would take its group) or the umask cannot be read without changing it.
 */
async function creatorOf(root: string): Promise<Creator | null> {
  const st = await stat(root);
  if ((st.mode & 0o2000) !== 0) return null;
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const m = /^Umask:\s*([0-7]+)$/m.exec(status);
  if (!m) return null;
  return { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1, umask: parseInt(m[1], 8) };
}

const root = (job: ReturnType<typeof planTree>): string => job.dirs[0].path;
