import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, writeFile, copyFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, notFound } from '../errors/errors.js';
import { digestHex, sha256Digest } from '../ztoc/digest.js';
import { goJson, orderIndex } from '../ztoc/go-json.js';
import { MEDIA_TYPE_OCI_INDEX, type Descriptor, type ImageIndex } from '../ztoc/oci.js';
import { TarReader } from '../ztoc/tar-reader.js';
import type { ImageSink, ImageSource } from './image-source.js';
import { verifyStream } from './verify-stream.js';

/** OCI image layout (image-spec "image-layout"): a directory or a tar of one, with no containerd. */

export const ANN_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANN_CONTAINERD_NAME = 'io.containerd.image.name';

interface FileLocation {
  offset: number;
  size: number;
}

/** Reads files of a layout from a directory or, without extracting it, from a tar. */
interface LayoutFiles {
  read(path: string): Promise<Buffer>;
  readRange(path: string, offset: number, length: number): Promise<Buffer>;
  stream(path: string): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

class DirFiles implements LayoutFiles {
  constructor(private readonly dir: string) {}
  async read(path: string): Promise<Buffer> {
    try {
      return await readFile(join(this.dir, path));
    } catch {
      throw notFound(`OCI layout ${this.dir}: ${path} not found`);
    }
  }
  async readRange(path: string, offset: number, length: number): Promise<Buffer> {
    const fh = await open(join(this.dir, path), 'r').catch(() => {
      throw notFound(`OCI layout ${this.dir}: ${path} not found`);
    });
    try {
      return await readExactly(fh, offset, length, `OCI layout ${this.dir}: ${path}`);
    } finally {
      await fh.close();
    }
  }
  async *stream(path: string): AsyncIterable<Uint8Array> {
    await stat(join(this.dir, path)).catch(() => {
      throw notFound(`OCI layout ${this.dir}: ${path} not found`);
    });
    yield* createReadStream(join(this.dir, path), { highWaterMark: 1 << 20 });
  }
  async close(): Promise<void> {}
}

class TarFiles implements LayoutFiles {
  private constructor(
    private readonly tarPath: string,
    private readonly fh: FileHandle,
    private readonly files: Map<string, FileLocation>,
  ) {}

  static async open(tarPath: string): Promise<TarFiles> {
    const reader = new TarReader();
    for await (const chunk of createReadStream(tarPath, { highWaterMark: 1 << 20 })) reader.push(chunk as Buffer);
    reader.end();
    const files = new Map<string, FileLocation>();
    for (const e of reader.entries) {
      if (e.type !== 'reg') continue;
      files.set(e.name.replace(/^\.\//, ''), { offset: e.uncompressedOffset, size: e.uncompressedSize });
    }
    return new TarFiles(tarPath, await open(tarPath, 'r'), files);
  }

  private locate(path: string): FileLocation {
    const loc = this.files.get(path);
    if (!loc) throw notFound(`OCI layout tar ${this.tarPath}: ${path} not found`);
    return loc;
  }

  async read(path: string): Promise<Buffer> {
    const loc = this.locate(path);
    return readExactly(this.fh, loc.offset, loc.size, `OCI layout tar ${this.tarPath}: ${path}`);
  }

  async readRange(path: string, offset: number, length: number): Promise<Buffer> {
    const loc = this.locate(path);
    if (offset < 0 || offset + length > loc.size) throw invalidArgument(`OCI layout tar ${this.tarPath}: range ${offset}+${length} outside ${path}`);
    return readExactly(this.fh, loc.offset + offset, length, `OCI layout tar ${this.tarPath}: ${path}`);
  }

  async *stream(path: string): AsyncIterable<Uint8Array> {
    const loc = this.locate(path);
    if (loc.size === 0) return;
    yield* createReadStream(this.tarPath, { start: loc.offset, end: loc.offset + loc.size - 1, highWaterMark: 1 << 20 });
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readExactly(fh: FileHandle, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw invalidArgument(`${what}: short read at ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

const blobPath = (digest: string): string => `blobs/sha256/${digestHex(digest)}`;

function parseIndex(bytes: Buffer, where: string): ImageIndex {
  try {
    const idx = JSON.parse(bytes.toString('utf8')) as ImageIndex;
    if (!Array.isArray(idx.manifests)) throw new Error('manifests missing');
    return idx;
  } catch (e) {
    throw invalidArgument(`OCI layout ${where}: index.json is invalid: ${(e as Error).message}`);
  }
}

/** The entry of index.json named `ref` (by ref.name or containerd's full name), or the only one. */
export function selectLayoutEntry(index: ImageIndex, ref: string | undefined, where: string): Descriptor {
  const names = (d: Descriptor): string[] =>
    [d.annotations?.[ANN_REF_NAME], d.annotations?.[ANN_CONTAINERD_NAME]].filter((n): n is string => !!n);
  if (ref) {
    const hit = index.manifests.find((d) => names(d).includes(ref) || d.digest === ref);
    if (!hit) {
      const known = index.manifests.flatMap(names);
      throw notFound(`OCI layout ${where}: no image named ${JSON.stringify(ref)} (has: ${known.join(', ') || 'no names'})`);
    }
    return hit;
  }
  if (index.manifests.length !== 1) {
    throw invalidArgument(`OCI layout ${where} holds ${index.manifests.length} images: name one`);
  }
  return index.manifests[0];
}

export class OciLayoutSource implements ImageSource {
  readonly origin: string;

  private constructor(
    readonly path: string,
    private readonly files: LayoutFiles,
  ) {
    this.origin = `oci-layout:${path}`;
  }

  static async open(path: string): Promise<OciLayoutSource> {
    const st = await stat(path).catch(() => {
      throw notFound(`OCI layout ${path} does not exist`);
    });
    const files = st.isDirectory() ? new DirFiles(path) : await TarFiles.open(path);
    const src = new OciLayoutSource(path, files);
    const marker = await files.read('oci-layout').catch(() => {
      throw invalidArgument(`${path} is not an OCI image layout: no oci-layout file`);
    });
    if (!/"imageLayoutVersion"/.test(marker.toString())) throw invalidArgument(`${path} is not an OCI image layout: bad oci-layout file`);
    return src;
  }

  async index(): Promise<ImageIndex> {
    return parseIndex(await this.files.read('index.json'), this.path);
  }

  async resolve(ref: string): Promise<Descriptor> {
    return selectLayoutEntry(await this.index(), ref || undefined, this.path);
  }

  async readBlob(desc: Descriptor): Promise<Buffer> {
    const bytes = await this.files.read(blobPath(desc.digest));
    const got = sha256Digest(bytes);
    if (got !== desc.digest) throw invalidArgument(`OCI layout ${this.path}: blob ${desc.digest} hashes to ${got}`);
    return bytes;
  }

  readRange(desc: Descriptor, offset: number, length: number): Promise<Buffer> {
    return this.files.readRange(blobPath(desc.digest), offset, length);
  }

  streamBlob(desc: Descriptor): AsyncIterable<Uint8Array> {
    return verifyStream(desc, this.files.stream(blobPath(desc.digest)), `OCI layout ${this.path}: blob`);
  }

  async close(): Promise<void> {
    await this.files.close();
  }
}

/** Writes a converted image into an OCI layout directory (created if missing). */
export class OciLayoutSink implements ImageSink {
  constructor(readonly dir: string) {}

  private async ensureLayout(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const marker = join(this.dir, 'oci-layout');
    await stat(marker).catch(() => writeFile(marker, '{"imageLayoutVersion":"1.0.0"}'));
  }

  async writeBlob(desc: Descriptor, bytes: Uint8Array): Promise<void> {
    await this.ensureLayout();
    const path = join(this.dir, blobPath(desc.digest));
    if ((await stat(path).catch(() => undefined))?.size === desc.size) return;
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }

  async copyBlob(desc: Descriptor, from: ImageSource): Promise<void> {
    await this.ensureLayout();
    const path = join(this.dir, blobPath(desc.digest));
    if ((await stat(path).catch(() => undefined))?.size === desc.size) return;
    if (from instanceof OciLayoutSource && (await stat(join(from.path, blobPath(desc.digest))).catch(() => undefined))) {
      await copyFile(join(from.path, blobPath(desc.digest)), path);
      return;
    }
    const tmp = `${path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      for await (const c of from.streamBlob(desc)) await fh.write(c);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }

  async tagImage(name: string, desc: Descriptor): Promise<void> {
    await this.ensureLayout();
    const indexPath = join(this.dir, 'index.json');
    const existing = await readFile(indexPath).then((b) => parseIndex(b, this.dir)).catch(() => undefined);
    const manifests = (existing?.manifests ?? []).filter((d) => d.annotations?.[ANN_REF_NAME] !== name);
    manifests.push({ ...desc, annotations: { ...(desc.annotations ?? {}), [ANN_REF_NAME]: name } });
    const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests };
    await writeFile(`${indexPath}.tmp`, goJson(orderIndex(index)));
    await rename(`${indexPath}.tmp`, indexPath);
  }

  async close(): Promise<void> {}
}
