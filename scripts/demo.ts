/**
 * The main job end to end on embedded defaults (`scripts/demo.sh`): a local registry, a
 * sample multi-layer image pushed with its SOCI index, containerd with the SOCI snapshotter
 * as a proxy plugin, then the same workload started twice: `ctr pull` + `ctr run` on
 * overlayfs, and `soci image rpull` + `ctr run --snapshotter soci`. Prints the time saved
 * and the bytes each fetched.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from '../test/helpers/exec.js';
import { buildBusyboxImage } from '../test/helpers/images.js';
import { startContainerd } from '../test/helpers/containerd.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { startRegistry } from '../test/helpers/registry.js';
import { pushImage } from '../test/helpers/registry-push.js';
import { soci } from '../test/helpers/soci-cli.js';

const WORK = process.env.SOCI_DEMO_DIR ?? '/tmp/soci-demo';
const MiB = 2 ** 20;

function say(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

async function must(res: { code: number; stdout: string; stderr: string }, what: string): Promise<string> {
  if (res.code !== 0) throw new Error(`${what} failed: ${res.stderr.trim() || res.stdout.trim()}`);
  return res.stdout;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

/** Real files from this machine, so the layer compresses and reads like a real one. */
function bigLayerPaths(): string[] {
  return ['/usr/lib/gcc', '/usr/include', '/usr/share/doc', '/usr/lib/python3.11', '/usr/share/perl'].filter((p) => existsSync(p));
}

async function main(): Promise<void> {
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  say('== set-up: local registry, sample image, SOCI index');
  const reg = await startRegistry();
  const stops: Array<() => Promise<void>> = [() => reg.stop()];
  try {
    const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', ...bigLayerPaths().map((p) => p.slice(1))])).stdoutBuffer;
    const image = await buildBusyboxImage(join(WORK, 'layout'), {
      extraLayers: [
        { tarFrom: tar, compression: 'gzip' },
        { tarFrom: ['/etc/ssl'], compression: 'gzip' },
      ],
    });
    const ref = `${reg.host}/demo/app:1`;
    await pushImage(reg.url, 'demo/app', '1', image);
    const total = image.layers.reduce((n, l) => n + l.size, 0);
    for (const l of image.layers) say(`   layer ${l.digest.slice(0, 19)}… ${(l.size / MiB).toFixed(1)} MiB`);
    const builder = join(WORK, 'builder-root');
    say((await must(await soci(builder, ['create', ref], ['--address', '/nonexistent']), 'soci create')).trimEnd().replace(/^/gm, '   '));
    say((await must(await soci(builder, ['push', ref]), 'soci push')).trimEnd().replace(/^/gm, '   '));

    say('== start soci-snapshotter-grpc and containerd (proxy plugin "soci")');
    const daemon = await startDaemon({ root: join(WORK, 'daemon-root'), address: join(WORK, 'soci.sock'), logLevel: 'info' });
    stops.unshift(() => daemon.stop());
    const ctd = await startContainerd({ proxyPlugins: { soci: daemon.address } });
    stops.unshift(() => ctd.stop());

    const file = '/usr/include/stdio.h';
    const want = createHash('sha256').update(await readFile(file)).digest('hex');
    const served = async (since: number): Promise<number> =>
      (await reg.accessLog()).slice(since).filter((e) => e.method === 'GET' && e.path.includes('/blobs/')).reduce((n, e) => n + e.bytes, 0);

    say(`== overlayfs: ctr pull + ctr run (reads ${file})`);
    let mark = (await reg.accessLog()).length;
    const [, plainPull] = await timed(async () => must(await ctd.ctr(['images', 'pull', '--plain-http', ref]), 'ctr pull'));
    const [plainOut, plainRun] = await timed(async () => must(await ctd.ctr(['run', '--rm', ref, 'plain', 'sha256sum', file]), 'ctr run'));
    const plainBytes = await served(mark);
    say(`   pull ${plainPull.toFixed(2)} s + run ${plainRun.toFixed(2)} s; ${(plainBytes / MiB).toFixed(1)} MiB fetched; output ok: ${plainOut.startsWith(want)}`);
    await ctd.ctr(['images', 'rm', ref]);

    say(`== SOCI: soci image rpull + ctr run --snapshotter soci`);
    mark = (await reg.accessLog()).length;
    const [pullOut, lazyPull] = await timed(async () => must(await soci(join(WORK, 'node-root'), ['image', 'rpull', ref], ['--address', ctd.address]), 'soci image rpull'));
    say(pullOut.trimEnd().replace(/^/gm, '   '));
    const [lazyOut, lazyRun] = await timed(async () => must(await ctd.ctr(['run', '--rm', '--snapshotter', 'soci', ref, 'lazy', 'sha256sum', file]), 'ctr run --snapshotter soci'));
    const lazyBytes = await served(mark);
    say(`   rpull ${lazyPull.toFixed(2)} s + run ${lazyRun.toFixed(2)} s; ${(lazyBytes / MiB).toFixed(1)} MiB fetched; output ok: ${lazyOut.startsWith(want)}`);

    const before = plainPull + plainRun;
    const after = lazyPull + lazyRun;
    say('');
    say(`image ${(total / MiB).toFixed(1)} MiB compressed`);
    say(`overlayfs: output after ${before.toFixed(2)} s, ${(plainBytes / MiB).toFixed(1)} MiB from the registry`);
    say(`soci:      output after ${after.toFixed(2)} s, ${(lazyBytes / MiB).toFixed(1)} MiB from the registry`);
    say(`time saved: ${(before - after).toFixed(2)} s (${(before / after).toFixed(1)}x sooner), ${((1 - lazyBytes / Math.max(plainBytes, 1)) * 100).toFixed(0)}% fewer bytes`);
    say('(loopback registry: the gap grows with a real network; see bench/ for throttled links)');
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
