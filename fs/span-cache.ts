/**
 * The span cache: uncompressed spans on disk under one directory, one file per (layer, span),
 * `<dir>/<layer hex>/<span id>-<sha256 hex of the file's content>`, plus an in-memory LRU of
 * hot spans. The disk part is capped in bytes across all layers with LRU eviction; its index
 * lives in memory and is rebuilt by scanning the directory on start.
 *
 * Files are written to a temp name and renamed, so a reader never sees a half-written file
 * under a final name. No fsync: after a crash a renamed file may hold fewer or other bytes
 * than were written, but every file found on start is unverified, and its first read checks
 * size and content against the digest in its name, so a damaged file is dropped and refetched.
 * The cache is a copy of what the registry holds; losing it costs a refetch, not data, and an
 * fsync per span would put a disk flush on the read path.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { describe } from '../errors/errors.js';
import { digestHex } from '../ztoc/digest.js';
import { silentLogger, type FsLogger } from './fs-logger.js';
import { SpanBuffers } from './span-buffers.js';
import { SpanFileWriter } from './span-file-writer.js';

export type CacheTier = 'memory' | 'disk';

/** Told about one layer's span files that reads may use directly (fs/span-table.ts). */
export interface SpanFileWatcher {
  /** `file` (in layerDirectory) holds span `id`, `size` bytes, complete and verified. */
  local(id: number, file: string, size: number): void;
  /** The span's file is about to be deleted (evicted, dropped, replaced, layer removed). */
  gone(id: number): void;
}
export type DropReason = 'size' | 'digest' | 'read-error';

/** Counters the daemon exports (prom-client); every hook is optional. */
export interface SpanCacheMetrics {
  hit?(tier: CacheTier): void;
  miss?(): void;
  evict?(tier: CacheTier, bytes: number): void;
  /** A disk file failed its check and was deleted. */
  drop?(reason: DropReason): void;
}

export interface SpanCacheOptions {
  /** config cache.directory */
  directory: string;
  /** config cache.disk_cache_max_bytes */
  diskMaxBytes: number;
  /** config cache.memory_cache_max_bytes; 0 = no memory cache. */
  memoryMaxBytes: number;
  logger?: FsLogger;
  metrics?: SpanCacheMetrics;
  /** Writes span files; by default past the page cache where the filesystem allows it. */
  writer?: SpanFileWriter;
}

interface DiskEntry {
  layerHex: string;
  file: string;
  size: number;
  /** sha256 hex of the content, from the file name. */
  digest: string;
  /** Written or already checked by this process: only the size is checked on read. */
  verified: boolean;
}

const FILE_RE = /^(\d+)-([0-9a-f]{64})$/;
const TMP_PREFIX = '.tmp-';
const LAYER_DIR_RE = /^[0-9a-f]{64}$/;

const HASH_PIECE = 1 << 20;
/** Span files kept open for reads: a few readers each streaming through a couple of spans. */
const OPEN_FILES = 64;
/** Evicted memory-cache buffers kept for reuse, at most. */
const MAX_IDLE_BUFFERS = 64 << 20;

/**
 * sha256 in 1 MiB pieces with a turn of the event loop between them (~1 ms each with SHA-NI), so
 * hashing a 4 MiB span never holds up FUSE metadata answers. webcrypto's digest measured 10x
 * slower here and still stalled the loop for tens of ms, so node:crypto it is.
 */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const h = createHash('sha256');
  for (let i = 0; i < data.length; i += HASH_PIECE) {
    if (i > 0) await yieldLoop();
    h.update(data.subarray(i, i + HASH_PIECE));
  }
  return h.digest('hex');
}

export class SpanCache {
  /** Insertion order is recency order: a touch deletes and re-inserts. */
  private readonly index = new Map<string, DiskEntry>();
  private readonly memory: LRUCache<string, Buffer> | undefined;
  private readonly generation = new Map<string, number>();
  /** Memory-cache buffers, reused once evicted (see span-buffers.ts); fetched spans are inflated straight into them. */
  readonly buffers: SpanBuffers;
  /** Open span files by `<layer hex>/<file>`; a pending read finishes before its handle closes. */
  private readonly handles = new LRUCache<string, Promise<FileHandle>>({
    max: OPEN_FILES,
    dispose: (fh) => void fh.then((h) => h.close()).catch(() => undefined),
  });
  private diskTotal = 0;
  /** Per layer hex: who reads its span files directly. */
  private readonly watchers = new Map<string, Set<SpanFileWatcher>>();
  private readonly log: FsLogger;
  private readonly metrics: SpanCacheMetrics;
  private readonly writer: SpanFileWriter;

  private constructor(private readonly opts: SpanCacheOptions) {
    this.log = opts.logger ?? silentLogger;
    this.metrics = opts.metrics ?? {};
    this.writer = opts.writer ?? new SpanFileWriter({
      onDirectUnsupported: (cause) => this.log.info({ directory: opts.directory, err: cause }, `span cache: ${opts.directory} refuses O_DIRECT writes; span files go through the page cache`),
    });
    this.buffers = new SpanBuffers(Math.min(MAX_IDLE_BUFFERS, opts.memoryMaxBytes));
    this.memory = opts.memoryMaxBytes > 0
      ? new LRUCache<string, Buffer>({
        maxSize: opts.memoryMaxBytes,
        sizeCalculation: (b) => Math.max(1, b.length),
        dispose: (b, _k, reason) => {
          if (reason === 'evict') this.metrics.evict?.('memory', b.length);
          this.buffers.retire(b);
        },
      })
      : undefined;
  }

  /** Opens (creating) the cache directory and indexes the spans already in it. */
  static async open(opts: SpanCacheOptions): Promise<SpanCache> {
    const cache = new SpanCache(opts);
    await mkdir(opts.directory, { recursive: true });
    await cache.scan();
    await cache.evictDisk();
    return cache;
  }

  get diskBytes(): number {
    return this.diskTotal;
  }

  get diskSpans(): number {
    return this.index.size;
  }

  get memoryBytes(): number {
    return this.memory?.calculatedSize ?? 0;
  }

  /**
   * Synchronous memory lookup: the warm read path takes no promise round trip. The buffer is
   * reused once evicted: copy from it now, never keep it across an await.
   */
  getMemory(layer: string, id: number): Buffer | undefined {
    const b = this.memory?.get(keyOf(digestHex(layer, 'layer digest'), id));
    if (b) this.metrics.hit?.('memory');
    return b;
  }

  /** A lookup that neither counts as a hit nor refreshes recency. */
  hasInMemory(layer: string, id: number): boolean {
    return this.memory?.has(keyOf(digestHex(layer, 'layer digest'), id)) ?? false;
  }

  hasOnDisk(layer: string, id: number): boolean {
    return this.index.has(keyOf(digestHex(layer, 'layer digest'), id));
  }

  /**
   * The span's uncompressed bytes if cached and intact (exactly `size` bytes); never a damaged
   * file. The buffer stays intact until the next turn of the event loop: copy from it in the
   * continuation of this call (or of a promise it resolves), not later.
   */
  async get(layer: string, id: number, size: number): Promise<Buffer | undefined> {
    const key = keyOf(digestHex(layer, 'layer digest'), id);
    const mem = this.memory?.get(key);
    if (mem && mem.length === size) {
      this.metrics.hit?.('memory');
      this.buffers.pinForTurn(mem);
      return mem;
    }
    const data = await this.readDisk(key, id, size);
    if (!data) {
      this.metrics.miss?.();
      return undefined;
    }
    this.remember(key, data);
    this.buffers.pinForTurn(data);
    this.metrics.hit?.('disk');
    return data;
  }

  private remember(key: string, data: Buffer): void {
    if (!this.memory) return;
    this.buffers.reinstate(data);
    this.memory.set(key, data);
  }

  /** Whether readInto can serve this span now (on disk, verified by this process, of this size). */
  hasVerified(layer: string, id: number, size: number): boolean {
    return this.verifiedEntry(keyOf(digestHex(layer, 'layer digest'), id), size) !== undefined;
  }

  private verifiedEntry(key: string, size: number): DiskEntry | undefined {
    const e = this.index.get(key);
    return e?.verified && e.size === size ? e : undefined;
  }

  /**
   * Copies bytes [from, to) of a span whose disk file this process already verified into
   * `dest` at `at`, with one pread on a kept-open file: no span-sized buffer, so serving from
   * disk makes no garbage (each big Buffer is external memory, and V8 answers a stream of them
   * with a full GC every few dozen MiB). false when the span is not on disk or not yet verified
   * (the caller then loads the whole span through get()).
   */
  async readInto(layer: string, id: number, size: number, from: number, to: number, dest: Uint8Array, at: number): Promise<boolean> {
    const key = keyOf(digestHex(layer, 'layer digest'), id);
    const e = this.verifiedEntry(key, size);
    if (!e) return false;
    let bytesRead: number;
    try {
      const fh = await this.handle(e);
      ({ bytesRead } = await fh.read(dest, at, to - from, from));
    } catch {
      // Evicted or removed meanwhile (its handle closed): the whole-span path decides.
      return false;
    }
    if (bytesRead !== to - from) {
      await this.drop(key, e, 'size', `short read at ${from} (file cut short)`);
      return false;
    }
    if (this.index.get(key) === e) this.touch(key, e);
    this.metrics.hit?.('disk');
    return true;
  }

  /** The open handle of a verified span file; opened once, closed when it leaves the LRU or the index. */
  private handle(e: DiskEntry): Promise<FileHandle> {
    const name = fileKey(e);
    let fh = this.handles.get(name);
    if (!fh) {
      fh = open(join(this.opts.directory, e.layerHex, e.file), 'r');
      fh.catch(() => {
        if (this.handles.get(name) === fh) this.handles.delete(name);
      });
      this.handles.set(name, fh);
    }
    return fh;
  }

  private async readDisk(key: string, id: number, size: number): Promise<Buffer | undefined> {
    const e = this.index.get(key);
    if (!e) return undefined;
    if (e.size !== size) return this.drop(key, e, 'size', `${e.size} bytes on disk, expected ${size}`);
    // One byte more than expected, to see that the file ends where it should.
    const buf = this.buffers.take(size + 1);
    const reject = (reason: DropReason, why: string): Promise<undefined> => {
      this.buffers.retire(buf);
      return this.drop(key, e, reason, why);
    };
    let data: Buffer;
    try {
      data = buf.subarray(0, await readFully(join(this.opts.directory, e.layerHex, e.file), buf));
    } catch (err) {
      return reject('read-error', describe(err));
    }
    if (data.length !== size) return reject('size', `${data.length} bytes on disk, expected ${size}`);
    if (!e.verified) {
      const got = await sha256Hex(data);
      if (got !== e.digest) return reject('digest', `content sha256:${got} does not match its name (span ${id})`);
      e.verified = true;
      if (this.index.get(key) === e) this.announce(key, e);
    }
    if (this.index.get(key) === e) this.touch(key, e);
    return data;
  }

  /** Forgets a damaged file at once; resolves once it is deleted, so callers never see it again. */
  private async drop(key: string, e: DiskEntry, reason: DropReason, why: string): Promise<undefined> {
    this.log.warn({ layer: `sha256:${e.layerHex}`, file: e.file, reason }, `span cache: dropping ${e.layerHex}/${e.file}: ${why}`);
    this.metrics.drop?.(reason);
    if (this.index.get(key) === e) this.forget(key, e);
    await unlink(join(this.opts.directory, e.layerHex, e.file)).catch(() => undefined);
    return undefined;
  }

  /**
   * Stores a span (memory first, then disk). Never throws: a cache that cannot write only
   * costs refetches, so the failure is logged and the read goes on. `sha256` (hex), when the
   * caller already hashed `data`, spares hashing it again on this thread.
   */
  async put(layer: string, id: number, data: Buffer, sha256?: string): Promise<void> {
    const layerHex = digestHex(layer, 'layer digest');
    const key = keyOf(layerHex, id);
    this.remember(key, data);
    // Hashed and written below while the memory cache may already have let it go.
    this.buffers.pin(data);
    try {
      await this.store(layerHex, key, id, data, sha256);
    } finally {
      this.buffers.unpin(data);
    }
  }

  private async store(layerHex: string, key: string, id: number, data: Buffer, sha256: string | undefined): Promise<void> {
    const layer = `sha256:${layerHex}`;
    const old = this.index.get(key);
    if (old && old.size === data.length && old.verified) return this.touch(key, old);
    const gen = this.generation.get(layerHex) ?? 0;
    const dir = join(this.opts.directory, layerHex);
    const tmp = join(dir, `${TMP_PREFIX}${id}-${randomBytes(6).toString('hex')}`);
    try {
      const digest = sha256 ?? (await sha256Hex(data));
      const file = `${id}-${digest}`;
      await mkdir(dir, { recursive: true });
      await this.writer.write(tmp, data);
      await rename(tmp, join(dir, file));
      if ((this.generation.get(layerHex) ?? 0) !== gen) return void (await this.discard(dir, file));
      const prev = this.index.get(key);
      if (prev) {
        this.forget(key, prev);
        if (prev.file !== file) void unlink(join(dir, prev.file)).catch(() => undefined);
      }
      this.add(key, { layerHex, file, size: data.length, digest, verified: true });
      await this.evictDisk();
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if ((this.generation.get(layerHex) ?? 0) !== gen) return;
      this.log.warn({ layer, span: id, err: describe(err) }, `span cache: cannot write span ${id} of layer ${layer}: ${describe(err)}`);
    }
  }

  /** A put that raced removeLayer: its file must not outlive the layer. */
  private async discard(dir: string, file: string): Promise<void> {
    await unlink(join(dir, file)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }

  /** Where a layer's span files are. */
  layerDirectory(layer: string): string {
    return join(this.opts.directory, digestHex(layer, 'layer digest'));
  }

  /**
   * Tells `w` about the layer's verified span files, those on disk now and those to come, and
   * about each one before it is deleted; returns the function that stops it.
   */
  watchLayer(layer: string, w: SpanFileWatcher): () => void {
    const layerHex = digestHex(layer, 'layer digest');
    let set = this.watchers.get(layerHex);
    if (!set) this.watchers.set(layerHex, (set = new Set()));
    set.add(w);
    for (const [key, e] of this.index) if (e.layerHex === layerHex && e.verified) w.local(idOf(key), e.file, e.size);
    return () => {
      set.delete(w);
      if (set.size === 0 && this.watchers.get(layerHex) === set) this.watchers.delete(layerHex);
    };
  }

  /** A read served from the span's file elsewhere (in C) counts for its recency. */
  touchSpan(layer: string, id: number): void {
    const key = keyOf(digestHex(layer, 'layer digest'), id);
    const e = this.index.get(key);
    if (e) this.touch(key, e);
  }

  private announce(key: string, e: DiskEntry): void {
    if (e.verified) for (const w of this.watchers.get(e.layerHex) ?? []) w.local(idOf(key), e.file, e.size);
  }

  /** Closes the span files kept open for reads; the cache stays usable and opens them again. */
  close(): void {
    this.handles.clear();
  }

  /** Deletes every span of a layer, in memory and on disk (its last mount went away). */
  async removeLayer(layer: string): Promise<void> {
    const layerHex = digestHex(layer, 'layer digest');
    this.generation.set(layerHex, (this.generation.get(layerHex) ?? 0) + 1);
    for (const [key, e] of this.index) if (e.layerHex === layerHex) this.forget(key, e);
    if (this.memory) for (const key of [...this.memory.keys()]) if (key.startsWith(`${layerHex}/`)) this.memory.delete(key);
    // Renamed away first, so a put that is just now creating the directory starts a fresh one.
    const dir = join(this.opts.directory, layerHex);
    const trash = join(this.opts.directory, `${TMP_PREFIX}rm-${layerHex}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch {
      return;
    }
    await rm(trash, { recursive: true, force: true });
  }

  private add(key: string, e: DiskEntry): void {
    this.index.set(key, e);
    this.diskTotal += e.size;
    this.announce(key, e);
  }

  private forget(key: string, e: DiskEntry): void {
    for (const w of this.watchers.get(e.layerHex) ?? []) w.gone(idOf(key));
    this.index.delete(key);
    this.handles.delete(fileKey(e));
    this.diskTotal -= e.size;
  }

  private touch(key: string, e: DiskEntry): void {
    this.index.delete(key);
    this.index.set(key, e);
  }

  private async evictDisk(): Promise<void> {
    const victims: DiskEntry[] = [];
    for (const [key, e] of this.index) {
      if (this.diskTotal <= this.opts.diskMaxBytes) break;
      this.forget(key, e);
      victims.push(e);
      this.metrics.evict?.('disk', e.size);
    }
    await Promise.all(victims.map((e) => unlink(join(this.opts.directory, e.layerHex, e.file)).catch(() => undefined)));
  }

  /** Rebuilds the index from the directory: oldest files first, so they are evicted first. Leftover temp files are removed. */
  private async scan(): Promise<void> {
    const root = this.opts.directory;
    const found: { key: string; entry: DiskEntry; mtime: number }[] = [];
    for (const d of await readdir(root, { withFileTypes: true })) {
      if (d.name.startsWith(TMP_PREFIX)) {
        await rm(join(root, d.name), { recursive: true, force: true });
        continue;
      }
      if (!d.isDirectory() || !LAYER_DIR_RE.test(d.name)) continue;
      found.push(...(await this.scanLayer(d.name)));
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      const prev = this.index.get(f.key);
      if (prev) {
        // Two files for one span (a crash between rename and unlink): the newer wins.
        this.forget(f.key, prev);
        await unlink(join(root, prev.layerHex, prev.file)).catch(() => undefined);
      }
      this.add(f.key, f.entry);
    }
  }

  private async scanLayer(layerHex: string): Promise<{ key: string; entry: DiskEntry; mtime: number }[]> {
    const dir = join(this.opts.directory, layerHex);
    const out: { key: string; entry: DiskEntry; mtime: number }[] = [];
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.startsWith(TMP_PREFIX)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const m = FILE_RE.exec(name);
      if (!m) continue;
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      const entry: DiskEntry = { layerHex, file: name, size: st.size, digest: m[2], verified: false };
      out.push({ key: keyOf(layerHex, Number(m[1])), entry, mtime: st.mtimeMs });
    }
    return out;
  }
}

/**
 * Fills `buf` from the start of a file, usually with one read (readFile reads in 512 KiB
 * pieces, one thread-pool round trip each); resolves to the bytes read.
 */
async function readFully(path: string, buf: Buffer): Promise<number> {
  const fh = await open(path, 'r');
  try {
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  } finally {
    await fh.close();
  }
}

function fileKey(e: DiskEntry): string {
  return `${e.layerHex}/${e.file}`;
}

function keyOf(layerHex: string, id: number): string {
  return `${layerHex}/${id}`;
}

function idOf(key: string): number {
  return Number(key.slice(key.indexOf('/') + 1));
}
