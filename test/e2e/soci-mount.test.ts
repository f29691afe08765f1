/**
 * `soci mount` of one layer straight from a registry (index found through the referrers
 * fallback, zTOC fetched), a file read through FUSE, the bytes the registry served, and
 * `soci unmount` ending the foreground process.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/registry-push.js';
import { buildBusyboxImage } from '../helpers/images.js';
import { execOk, execCapture } from '../helpers/exec.js';
import { tempDirFor } from '../helpers/tmp.js';
import { soci, SOCI_CLI } from '../helpers/soci-cli.js';
import { unmountAllUnder } from '../helpers/mounts.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

t.test('soci mount / unmount of a lazily loaded layer', async (t) => {
  const dir = await tempDirFor(t, 'soci-mount-');
  t.teardown(() => unmountAllUnder(dir));
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', 'usr/include'])).stdoutBuffer;
  const image = await buildBusyboxImage(join(dir, 'layout'), { extraLayers: [{ tarFrom: tar, compression: 'gzip' }] });
  await pushImage(reg.url, 'lazy/app', 'v1', image);
  const ref = `${reg.host}/lazy/app:v1`;
  const big = image.layers[1];
  const builder = join(dir, 'builder-root');
  t.equal((await soci(builder, ['create', '--span-size', '1MiB', ref], ['--address', '/nonexistent'])).code, 0);
  t.equal((await soci(builder, ['push', ref])).code, 0);

  // A fresh root: the mount must find the index in the registry, like a new node would.
  const root = join(dir, 'node-root');
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const logStart = (await reg.accessLog()).length;
  const child = spawn(process.execPath, [SOCI_CLI, '--root', root, 'mount', ref, big.digest, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 200 && !out.includes('mounted layer'); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(out, `mounted layer ${big.digest} at ${mnt}`, err);

  const file = 'usr/include/errno.h';
  const cat = await execCapture('cat', [join(mnt, file)]);
  t.equal(cat.code, 0, cat.stderr);
  t.equal(sha(cat.stdoutBuffer), sha(await readFile('/' + file)), 'file read through FUSE equals the original');
  const ls = await execCapture('ls', [join(mnt, 'usr/include')]);
  t.ok(ls.stdout.split('\n').length > 50, 'directory listing from the zTOC');

  const served = (await reg.accessLog()).slice(logStart).filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${big.digest}`));
  const bytes = served.reduce((n, e) => n + e.bytes, 0);
  t.ok(served.length >= 1, 'the layer blob was range-read');
  t.ok(bytes < big.size / 4, `fetched ${bytes} of ${big.size} layer bytes to read one file`);

  const um = await soci(root, ['unmount', mnt]);
  t.equal(um.code, 0, um.stderr);
  t.equal(await exited, 0, 'the foreground mount process ends after soci unmount');
  t.match(out, /unmounted .* \(unmounted\)/);
  const again = await soci(root, ['unmount', mnt]);
  t.not(again.code, 0);
  t.match(again.stderr, /nothing is mounted at/);
});
