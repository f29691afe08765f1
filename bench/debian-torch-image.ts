/**
 * A real >= 600 MiB image for the throttled-pull bench: Debian bookworm (debootstrap minbase)
 * with python3-torch, plus a second `apt-get install` of common ML/dev packages, captured as its
 * own layer the way `docker build` would (an overlayfs upper dir). The workload reads little of
 * that layer: /etc/ld.so.cache, and OpenBLAS, which the install makes the libblas/liblapack
 * alternative. Split into four gzip layers: base system, shared libraries, python packages, extras.
 * Everything is cached under the cache dir and reused on the next run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execCapture, execOk } from '../test/helpers/exec.js';
import { MEDIA_TYPES, REF_NAME_ANNOTATION, sha256Digest } from '../test/helpers/images.js';

export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
/** Real packages an ML image often carries; `import torch` reads only OpenBLAS of them (see above). */
export const EXTRA_PACKAGES = ['build-essential', 'python3-dev', 'libtorch-dev', 'python3-scipy', 'python3-pandas', 'python3-sklearn', 'python3-matplotlib'];
/** A program the benches run in the image, and the output line that ends the timing. */
export interface BenchWorkload {
  argv: string[];
  output: RegExp;
}

/**
 * torch (the default, issue 5's example): imports torch and sums with it, reading ~100 MiB of
 * the image's 2.4 GiB, scattered over libtorch and its dependencies. numpy: the same with
 * numpy, which torch's image carries too; a start that needs a smaller part of the image.
 */
export const WORKLOADS: Readonly<Record<string, BenchWorkload>> = {
  torch: { argv: ['python3', '-c', "import torch; print('torch', torch.__version__, torch.tensor([1,2]).sum().item())"], output: /^torch \S+ 3$/m },
  numpy: { argv: ['python3', '-c', "import numpy; print('numpy', numpy.__version__, int(numpy.arange(3).sum()))"], output: /^numpy \S+ 3$/m },
};

export function benchWorkload(name: string): BenchWorkload {
  const w = WORKLOADS[name];
  if (w === undefined) throw new Error(`--workload ${name}: not one of ${Object.keys(WORKLOADS).join(', ')}`);
  return w;
}
/** Bumped when the layer split changes; with the package list it names the cached dirs. */
const LAYOUT_VERSION = 1;
const CACHE_KEY = createHash('sha256').update(`${LAYOUT_VERSION} ${EXTRA_PACKAGES.join(' ')}`).digest('hex').slice(0, 12);

/** What `docker build` images usually drop: downloaded .debs and package lists. */
const APT_CACHES = ['./var/cache/apt', './var/lib/apt/lists'];

interface LayerPlan {
  name: string;
  /** Directory the tar is made from. */
  root: string;
  /** Paths inside root ("./..."); default the whole dir. */
  include?: string[];
  exclude: string[];
}

export interface BenchLayer {
  name: string;
  digest: string;
  size: number;
}

export interface BenchImage {
  layout: string;
  layers: BenchLayer[];
  compressedBytes: number;
}

type Say = (msg: string) => void;

/** Runs a shell pipeline; throws with its stderr. */
async function sh(script: string, ...args: string[]): Promise<string> {
  return (await execOk('bash', ['-euo', 'pipefail', '-c', script, 'sh', ...args])).stdout;
}

/** The unpacked trees the layers are made of: the debootstrap rootfs and the extras layer's upper dir. */
export function benchTrees(cache: string): { rootfs: string; extras: string } {
  return { rootfs: join(cache, 'rootfs'), extras: join(cache, `extras-${CACHE_KEY}`) };
}

async function ensureRootfs(cache: string, say: Say): Promise<string> {
  const { rootfs } = benchTrees(cache);
  if (existsSync(rootfs)) return rootfs;
  const tmp = `${rootfs}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  say(`   debootstrap bookworm minbase + python3-torch into ${rootfs} (takes minutes)`);
  await execOk('debootstrap', ['--variant=minbase', '--include=python3-torch', 'bookworm', tmp, DEBIAN_MIRROR]).catch((err: unknown) => {
    // execOk keeps spawn's error as the cause: ENOENT there is a missing program, not a failed run.
    const missing = err instanceof Error && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw missing ? new Error('debootstrap is not installed: apt-get install debootstrap', { cause: err }) : err;
  });
  await rename(tmp, rootfs);
  return rootfs;
}

/**
 * overlayfs whiteouts (0/0 char devices) as OCI whiteout files. An opaque upper dir hides the
 * lower one: `.wh..wh..opq` when the lower has that dir (overlayfs also marks some new dirs
 * opaque, which hides nothing).
 */
async function ociWhiteouts(upper: string, lower: string): Promise<void> {
  const devices = (await sh('find "$1" -type c -print0', upper)).split('\0').filter(Boolean);
  for (const dev of devices) {
    await rm(dev);
    await writeFile(join(dirname(dev), `.wh.${basename(dev)}`), '');
  }
  const opaque = await execCapture('getfattr', ['-R', '--absolute-names', '-n', 'trusted.overlay.opaque', upper]);
  for (const m of opaque.stdout.matchAll(/^# file: (.*)$/gm)) {
    const rel = m[1].slice(upper.length);
    if (existsSync(join(lower, rel))) await writeFile(join(m[1], '.wh..wh..opq'), '');
  }
}

/** `apt-get install` of the extra packages in a chroot on an overlay over the rootfs; the upper dir is the layer. */
async function ensureExtras(cache: string, rootfs: string, say: Say): Promise<string> {
  const upper = benchTrees(cache).extras;
  if (existsSync(upper)) return upper;
  const tmp = `${upper}.build`;
  const merged = join(tmp, 'merged');
  if (existsSync(join(tmp, 'upper.done'))) return finishExtras(tmp, upper, rootfs);
  await sh('for m in "$1/merged/proc" "$1/merged"; do mountpoint -q "$m" && umount "$m"; done; true', tmp);
  await rm(tmp, { recursive: true, force: true });
  for (const d of ['upper', 'work', 'merged']) await mkdir(join(tmp, d), { recursive: true });
  say(`   apt-get install ${EXTRA_PACKAGES.join(' ')} (an overlay upper dir becomes the extras layer)`);
  await execOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${join(tmp, 'upper')},workdir=${join(tmp, 'work')}`, merged]);
  try {
    await execOk('mount', ['-t', 'proc', 'proc', join(merged, 'proc')]);
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
      await execOk('chroot', [merged, 'apt-get', 'update'], { env });
      await execOk('chroot', [merged, 'apt-get', 'install', '-y', '--no-install-recommends', ...EXTRA_PACKAGES], { env });
      await execOk('chroot', [merged, 'apt-get', 'clean'], { env });
    } finally {
      await execOk('umount', [join(merged, 'proc')]);
    }
  } finally {
    await execOk('umount', [merged]);
  }
  await writeFile(join(tmp, 'upper.done'), '');
  return finishExtras(tmp, upper, rootfs);
}

async function finishExtras(tmp: string, upper: string, rootfs: string): Promise<string> {
  await ociWhiteouts(join(tmp, 'upper'), rootfs);
  await rename(join(tmp, 'upper'), upper);
  await rm(tmp, { recursive: true, force: true });
  return upper;
}

function layerPlans(rootfs: string, extras: string): LayerPlan[] {
  const big = ['./usr/lib/x86_64-linux-gnu', './usr/lib/python3'];
  return [
    // Images carry an empty /dev: the runtime mounts its own.
    { name: 'base system', root: rootfs, exclude: [...APT_CACHES, ...big, './dev/*'] },
    { name: 'shared libraries (libtorch)', root: rootfs, include: ['./usr/lib/x86_64-linux-gnu'], exclude: [] },
    { name: 'python packages (torch)', root: rootfs, include: ['./usr/lib/python3'], exclude: [] },
    { name: 'extras (apt-get install of ML/dev packages)', root: extras, exclude: APT_CACHES },
  ];
}

/** tar (real owners, modes, times; sorted) then gzip -6, as image builders do; returns blob path and digests. */
async function buildLayer(p: LayerPlan, dir: string): Promise<{ blob: string; digest: string; diffId: string; size: number }> {
  const tar = join(dir, 'layer.tar');
  const flags = ['--sort=name', '--numeric-owner', '--format=posix', '--pax-option=delete=atime,delete=ctime'];
  await execOk('tar', [...flags, ...p.exclude.map((e) => `--exclude=${e}`), '-C', p.root, '-cf', tar, ...(p.include ?? ['.'])]);
  const diffId = `sha256:${(await sh('sha256sum "$1"', tar)).split(' ')[0]}`;
  await sh('gzip -6 -n -c "$1" > "$1.gz"', tar);
  await rm(tar);
  const digest = `sha256:${(await sh('sha256sum "$1"', `${tar}.gz`)).split(' ')[0]}`;
  const blob = join(dir, 'blobs', 'sha256', digest.slice(7));
  await rename(`${tar}.gz`, blob);
  return { blob, digest, diffId, size: (await stat(blob)).size };
}

async function writeBlob(layout: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256Digest(data);
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), data);
  return { digest, size: data.length };
}

async function readImage(layout: string, names: string[]): Promise<BenchImage> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8')) as { layers: { digest: string; size: number }[] };
  const layers = manifest.layers.map((l, i) => ({ name: names[i] ?? `layer ${i}`, digest: l.digest, size: l.size }));
  return { layout, layers, compressedBytes: layers.reduce((n, l) => n + l.size, 0) };
}

export async function ensureDebianTorchImage(cache: string, say: Say): Promise<BenchImage> {
  await mkdir(cache, { recursive: true });
  const rootfs = await ensureRootfs(cache, say);
  const extras = await ensureExtras(cache, rootfs, say);
  const plans = layerPlans(rootfs, extras);
  const layout = join(cache, `layout-${CACHE_KEY}`);
  if (existsSync(join(layout, 'index.json'))) return readImage(layout, plans.map((p) => p.name));
  const tmp = `${layout}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true });
  const built = [];
  for (const p of plans) {
    say(`   layer: ${p.name}`);
    built.push(await buildLayer(p, tmp));
  }
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['python3'] },
    rootfs: { type: 'layers', diff_ids: built.map((b) => b.diffId) },
    history: plans.map((p) => ({ created_by: `soci throttled-pull bench: ${p.name}` })),
  }));
  const configDesc = await writeBlob(tmp, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, ...configDesc },
    layers: built.map((b) => ({ mediaType: MEDIA_TYPES.layer.gzip, digest: b.digest, size: b.size })),
  }));
  const manifestDesc = await writeBlob(tmp, manifest);
  await writeFile(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(tmp, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{ mediaType: MEDIA_TYPES.manifest, ...manifestDesc, platform: { architecture: 'amd64', os: 'linux' }, annotations: { [REF_NAME_ANNOTATION]: 'bench/debian-torch:1' } }],
  }));
  await rename(tmp, layout);
  return readImage(layout, plans.map((p) => p.name));
}
