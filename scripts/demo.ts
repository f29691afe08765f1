/**
 * The main job end to end on embedded defaults (`scripts/demo.sh`): a sample multi-layer
 * image, its SOCI index, inspection, a lazy single-file read through the zTOC, a SOCI v2
 * conversion, and the converted image run by a private containerd.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from '../test/helpers/exec.js';
import { buildBusyboxImage, ociLayoutToTar } from '../test/helpers/images.js';
import { startContainerd } from '../test/helpers/containerd.js';
import { soci } from '../test/helpers/soci-cli.js';

const WORK = process.env.SOCI_DEMO_DIR ?? '/tmp/soci-demo';
const IMAGE = 'example.com/demo/app:1';

function step(msg: string): void {
  process.stdout.write(`\n== ${msg}\n`);
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  process.stdout.write(`   ${what}: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  return r;
}

async function must(res: { code: number; stdout: string; stderr: string }, what: string): Promise<string> {
  if (res.code !== 0) throw new Error(`${what} failed: ${res.stderr.trim()}`);
  return res.stdout;
}

async function bigLayerSource(): Promise<string[]> {
  const candidates = ['/usr/lib/python3.11', '/usr/include', '/usr/share'];
  return candidates.filter((p) => existsSync(p)).slice(0, 2);
}

async function main(): Promise<void> {
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  const root = join(WORK, 'soci-root');

  step('build a sample image: busybox layer + a large layer of real files');
  const paths = await bigLayerSource();
  const tar = (await execOk('tar', ['-C', '/', '--sort=name', '-cf', '-', ...paths.map((p) => p.slice(1))])).stdoutBuffer;
  const image = await timed('image built', () =>
    buildBusyboxImage(join(WORK, 'layout'), { ref: IMAGE, extraLayers: [{ tarFrom: tar, compression: 'gzip' }] }),
  );
  for (const l of image.layers) process.stdout.write(`   layer ${l.digest} ${(l.size / 2 ** 20).toFixed(1)} MiB\n`);

  step('soci create (standalone, from the OCI layout)');
  const created = await timed('index created', async () => must(await soci(root, ['create', '--oci-layout', image.dir, IMAGE]), 'soci create'));
  process.stdout.write(created.trimEnd().replace(/^/gm, '   ') + '\n');
  process.stdout.write((await must(await soci(root, ['index', 'ls']), 'soci index ls')).trimEnd().replace(/^/gm, '   ') + '\n');

  const ztoc = /-> ztoc (sha256:[a-f0-9]{64})/.exec(created)?.[1];
  if (!ztoc) throw new Error('no ztoc was created');
  const info = JSON.parse(await must(await soci(root, ['ztoc', 'info', ztoc]), 'soci ztoc info')) as {
    num_spans: number;
    num_files: number;
    files: Array<{ filename: string; size: number; type: string }>;
  };
  process.stdout.write(`   ztoc ${ztoc}: ${info.num_files} files in ${info.num_spans} spans\n`);

  step('read one file through the zTOC (only the spans it covers)');
  const file = info.files.filter((f) => f.type === 'reg' && f.size > 1000).at(-1)!;
  const out = join(WORK, 'extracted');
  await timed(`soci ztoc get-file ${file.filename}`, async () =>
    must(await soci(root, ['ztoc', 'get-file', '--oci-layout', image.dir, ztoc, file.filename, '-o', out]), 'get-file'),
  );
  const same = createHash('sha256').update(await readFile(out)).digest('hex') === createHash('sha256').update(await readFile('/' + file.filename)).digest('hex');
  process.stdout.write(`   ${file.size} bytes, identical to the original: ${same}\n`);

  step('soci convert (SOCI index v2, standalone) and run the converted image with containerd');
  await ociLayoutToTar(image.dir, join(WORK, 'image.tar'));
  const conv = await timed('converted', async () =>
    must(await soci(root, ['convert', '--oci-layout', join(WORK, 'image.tar'), '--output', join(WORK, 'image-soci.tar'), IMAGE, `${IMAGE}-soci`]), 'soci convert'),
  );
  process.stdout.write(conv.trimEnd().replace(/^/gm, '   ') + '\n');
  const ctd = await startContainerd();
  try {
    await must(await ctd.ctr(['images', 'import', join(WORK, 'image-soci.tar')]), 'ctr images import');
    const run = await timed('ctr run', async () => must(await ctd.ctr(['run', '--rm', `${IMAGE}-soci`, 'demo', 'sh', '-c', `wc -c /${file.filename}`]), 'ctr run'));
    process.stdout.write(`   container says: ${run.trim()}\n`);
  } finally {
    await ctd.stop();
  }
  process.stdout.write('\ndemo complete\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
