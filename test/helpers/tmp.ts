/** Temp directories for tests, removed afterwards. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function makeTempDir(prefix = 'soci-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** A temp dir removed when the tap test ends. */
export async function tempDirFor(t: { teardown(fn: () => unknown): void }, prefix?: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  t.teardown(() => removeDir(dir));
  return dir;
}
