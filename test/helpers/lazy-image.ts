/**
 * The image the daemon e2e tests pull lazily: busybox, /usr/include of the host (the big layer,
 * thousands of files) and /etc/ssl, pushed to a test registry with a SOCI v1 index that only
 * the registry holds (found through the referrers fallback, as on a fresh node).
 */
import { join } from 'node:path';
import { buildBusyboxImage, type BuiltImage } from './images.js';
import { pushImage } from './registry-push.js';
import { execOk } from './exec.js';
import { soci } from './soci-cli.js';

export interface LazyImage {
  image: BuiltImage;
  /** host:port/repo:tag */
  ref: string;
  /** The soci CLI root used to build and push the index. */
  builder: string;
}

export const BIG_LAYER_DIR = 'usr/include';

export async function buildLazyImage(dir: string): Promise<BuiltImage> {
  const big = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', BIG_LAYER_DIR])).stdoutBuffer;
  return buildBusyboxImage(join(dir, 'layout'), {
    extraLayers: [
      { tarFrom: big, compression: 'gzip' },
      { tarFrom: ['/etc/ssl'], compression: 'gzip' },
    ],
  });
}

/** Pushes `image` as host/repo:latest with a v1 SOCI index in the registry only. */
export async function pushLazyImage(registry: { url: string; host: string }, dir: string, repo: string, image: BuiltImage): Promise<LazyImage> {
  await pushImage(registry.url, repo, 'latest', image);
  const ref = `${registry.host}/${repo}:latest`;
  const builder = join(dir, 'builder');
  const steps: string[][] = [['create', ref], ['push', ref], ['index', 'rm', '--ref', ref]];
  for (const args of steps) {
    const res = await soci(builder, args, ['--address', '/nonexistent']);
    if (res.code !== 0) throw new Error(`soci ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  }
  return { image, ref, builder };
}

/** The pino records (JSON lines) of a daemon log with this message. */
export function logRecords(logs: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.msg === msg) out.push(rec);
    } catch {
      // A line cut by a crash is no record.
    }
  }
  return out;
}

/** Bytes of `digest` the registry sent in GET responses since access-log entry `from`. */
export function blobBytesServed(log: { method: string; path: string; bytes: number }[], digest: string, from = 0): number {
  return log.slice(from).filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`)).reduce((n, e) => n + e.bytes, 0);
}
