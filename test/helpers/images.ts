/**
 * OCI images for tests, built without Docker: deterministic tar layers (GNU tar), gzip/zstd
 * compression, an image config with diff_ids, a manifest and an OCI image layout directory.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile, copyFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execOk } from './exec.js';
import { makeTempDir, removeDir } from './tmp.js';

/** 'gzip-multi': the tar split in three, each part its own gzip member, concatenated (as pigz/mgzip can produce). */
export type Compression = 'gzip' | 'gzip-multi' | 'none' | 'zstd';

export interface LayerSpec {
  /**
   * The layer's content: a function that fills an empty directory; a list of absolute host
   * paths stored at the same paths (leading "/" dropped); or an uncompressed tar as is.
   */
  tarFrom: string[] | ((dir: string) => Promise<void>) | Buffer;
  compression: Compression;
}

export interface ImageConfigSpec {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workingDir?: string;
}

export interface BuildSpec {
  layers: LayerSpec[];
  config: ImageConfigSpec;
  /** Stored as org.opencontainers.image.ref.name; `ctr images import` wants a full name. */
  ref?: string;
}

export interface BuiltLayer {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
  /** The uncompressed tar. */
  tar: Buffer;
  blob: Buffer;
}

export interface BuiltImage {
  dir: string;
  manifestDigest: string;
  manifestSize: number;
  manifest: Buffer;
  configDigest: string;
  config: Buffer;
  layers: BuiltLayer[];
}

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: { none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', 'gzip-multi': 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd' },
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

const TAR_FLAGS = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=posix',
  '--pax-option=delete=atime,delete=ctime'];

/** A deterministic uncompressed tar of a directory's contents (entries "./..."). */
export async function tarDirectory(dir: string): Promise<Buffer> {
  const tmp = await makeTempDir('soci-tar-');
  try {
    const out = join(tmp, 'layer.tar');
    await execOk('tar', [...TAR_FLAGS, '-C', dir, '-cf', out, '.']);
    return await readFile(out);
  } finally {
    await removeDir(tmp);
  }
}

async function layerTar(from: LayerSpec['tarFrom']): Promise<Buffer> {
  if (Buffer.isBuffer(from)) return from;
  const tmp = await makeTempDir('soci-layer-');
  try {
    const out = join(tmp, 'layer.tar');
    if (typeof from === 'function') {
      const root = join(tmp, 'root');
      await mkdir(root);
      await from(root);
      await execOk('tar', [...TAR_FLAGS, '-C', root, '-cf', out, '.']);
    } else {
      const rel = from.map((p) => p.replace(/^\/+/, ''));
      await execOk('tar', [...TAR_FLAGS, '-C', '/', '-cf', out, ...rel]);
    }
    return await readFile(out);
  } finally {
    await removeDir(tmp);
  }
}

export async function compress(tar: Buffer, compression: Compression): Promise<Buffer> {
  if (compression === 'none') return tar;
  if (compression === 'gzip') return gzipSync(tar);
  if (compression === 'gzip-multi') {
    const third = Math.ceil(tar.length / 3);
    return Buffer.concat([0, 1, 2].map((i) => gzipSync(tar.subarray(i * third, (i + 1) * third))));
  }
  return (await execOk('zstd', ['-q', '-c', '-3'], { input: tar })).stdoutBuffer;
}

export async function buildLayer(spec: LayerSpec): Promise<BuiltLayer> {
  const tar = await layerTar(spec.tarFrom);
  const blob = await compress(tar, spec.compression);
  return { mediaType: MEDIA_TYPES.layer[spec.compression], digest: sha256Digest(blob), size: blob.length, diffId: sha256Digest(tar), tar, blob };
}

export function imageConfig(layers: BuiltLayer[], spec: ImageConfigSpec): Buffer {
  const config: Record<string, unknown> = { Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] };
  if (spec.cmd) config.Cmd = spec.cmd;
  if (spec.entrypoint) config.Entrypoint = spec.entrypoint;
  if (spec.workingDir) config.WorkingDir = spec.workingDir;
  return Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created_by: 'soci test image builder' })),
  }));
}

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return digest;
}

/** Writes an OCI image layout (oci-layout, index.json, blobs/sha256/*) into dir. */
export async function buildOciLayout(dir: string, spec: BuildSpec): Promise<BuiltImage> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) layers.push(await buildLayer(l));
  for (const l of layers) await writeBlob(dir, l.blob);
  const config = imageConfig(layers, spec.config);
  const configDigest = await writeBlob(dir, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }));
  const manifestDigest = await writeBlob(dir, manifest);
  const desc: Record<string, unknown> = {
    mediaType: MEDIA_TYPES.manifest, digest: manifestDigest, size: manifest.length,
    platform: { architecture: 'amd64', os: 'linux' },
  };
  if (spec.ref) desc.annotations = { [REF_NAME_ANNOTATION]: spec.ref };
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [desc] }));
  return { dir, manifestDigest, manifestSize: manifest.length, manifest, configDigest, config, layers };
}

/** An OCI layout as a tar archive, as `ctr images import` reads it. */
export async function ociLayoutToTar(dir: string, tarPath: string): Promise<void> {
  await execOk('tar', ['-C', dir, '-cf', tarPath, 'oci-layout', 'index.json', 'blobs']);
}

export const BUSYBOX_BIN = '/bin/busybox';
export const BUSYBOX_APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'sha256sum', 'md5sum', 'find', 'stat', 'head', 'tail', 'wc', 'du', 'sleep', 'true', 'false',
  'mkdir', 'rm', 'cp', 'mv', 'touch', 'readlink', 'env', 'id', 'test', 'grep', 'sort', 'uniq', 'dd', 'od', 'xargs',
  'mount', 'df', 'printf', 'seq', 'tr', 'cut', 'ln', 'chmod',
];

/** Fills dir with busybox-static at /bin/busybox, applet symlinks in /bin, and /etc basics. */
export async function busyboxRootfs(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await copyFile(BUSYBOX_BIN, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of BUSYBOX_APPLETS) await symlink('busybox', join(dir, 'bin', applet));
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** A busybox image; extra layers go on top of the busybox layer. */
export async function buildBusyboxImage(dir: string, opts: { ref?: string; compression?: Compression; extraLayers?: LayerSpec[] } = {}): Promise<BuiltImage> {
  return buildOciLayout(dir, {
    layers: [{ tarFrom: busyboxRootfs, compression: opts.compression ?? 'gzip' }, ...(opts.extraLayers ?? [])],
    config: { cmd: ['/bin/sh'], env: ['PATH=/bin'] },
    ref: opts.ref,
  });
}
