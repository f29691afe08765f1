/** A FUSE mount serving one layer's inode tree, with data from an injected reader. */
import { invalidArgument, failedPrecondition, describe } from '../errors/errors.js';
import { silentLogger, type FsLogger } from './fs-logger.js';
import { SociFuse } from './fuse-binding.js';
import { countedOps, fuseOps, layerTablesOf, type FuseOpMetrics, type LayerTables, type ReadData } from './fuse-ops.js';
import type { InodeTree } from './inode.js';
import { clearStaleMount, lazyUnmount, raiseReadAhead } from './mountpoint.js';
import { dirTableReads, statTableCounts } from './stat-table.js';
import type { SpanTable } from './span-table.js';

export interface LayerFsOptions {
  mountpoint: string;
  /** Shown as the mount source in /proc/mounts. */
  fsname?: string;
  /** The `fuse.<subtype>` filesystem type. */
  subtype?: string;
  /** Names the layer in log lines (e.g. its digest). */
  label?: string;
  logger?: FsLogger;
  /** Kernel cache lifetimes in seconds; the layer never changes, so they default to a day. */
  entryTimeoutSec?: number;
  attrTimeoutSec?: number;
  negativeTimeoutSec?: number;
  /** max_read; libfuse2 still sends at most 128 KiB per read. */
  maxRead?: number;
  /** Written to the mount's bdi read_ahead_kb; 0 leaves the kernel default. */
  readAheadKb?: number;
  /** Counts every FUSE op and its errors (the daemon's metrics). */
  opMetrics?: FuseOpMetrics;
  /**
   * Reads of local spans answered in C (fs/span-table.ts): given each stat-table entry's data
   * offset, the table the addon reads from, kept current by the caller until `detach`.
   */
  spanTable?: (dataOffsets: number[]) => AttachedSpanTable;
  /** The tree's tables when already built (fs/layer-model.ts); otherwise mount builds them. */
  tables?: LayerTables;
}

export interface AttachedSpanTable {
  table: SpanTable;
  detach(): void;
}

const DAY = 86400;
const UNMOUNT_WAIT_MS = 3000;
const MIB = 1 << 20;

export function mountOptions(o: LayerFsOptions): string[] {
  const fsname = o.fsname ?? 'soci';
  const subtype = o.subtype ?? 'soci';
  for (const [k, v] of [['fsname', fsname], ['subtype', subtype]]) {
    if (!/^[A-Za-z0-9_.:@+-]+$/.test(v)) throw invalidArgument(`mount option ${k} ${JSON.stringify(v)} has characters outside [A-Za-z0-9_.:@+-]`);
  }
  return [
    'ro',
    'allow_other',
    'default_permissions',
    'kernel_cache',
    'use_ino',
    `entry_timeout=${o.entryTimeoutSec ?? DAY}`,
    `attr_timeout=${o.attrTimeoutSec ?? DAY}`,
    `negative_timeout=${o.negativeTimeoutSec ?? DAY}`,
    `max_read=${o.maxRead ?? MIB}`,
    `fsname=${fsname}`,
    `subtype=${subtype}`,
  ];
}

export class LayerFs {
  private fuse: SociFuse | null = null;
  /** The getattr and readdir tables the addon answers from, and what of their counts the metrics have. */
  private table?: { buf: Buffer; dir: Buffer; found: number; missing: number; readdirs: number; spans?: AttachedSpanTable; reads: number; stopFlushes?: () => void };
  private readonly log: FsLogger;
  private readonly label: string;

  constructor(
    private readonly tree: InodeTree,
    private readonly readData: ReadData,
    private readonly opts: LayerFsOptions,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.label = opts.label ?? opts.mountpoint;
  }

  get mountpoint(): string {
    return this.opts.mountpoint;
  }

  async mount(): Promise<void> {
    if (this.fuse) throw failedPrecondition(`layer ${this.label} is already mounted at ${this.mountpoint}`);
    if (await clearStaleMount(this.mountpoint)) this.log.warn({ mountpoint: this.mountpoint }, 'cleared a stale FUSE mount');
    for (const w of this.tree.warnings) this.log.warn({ layer: this.label }, w);
    const plain = fuseOps(this.tree, this.readData, this.log, this.label);
    const ops = this.opts.opMetrics ? countedOps(plain, this.opts.opMetrics) : plain;
    const tables = this.opts.tables ?? layerTablesOf(this.tree);
    const spans = this.opts.spanTable?.(tables.dataOffsets);
    const table = { buf: tables.stat, dir: tables.dir, found: 0, missing: 0, readdirs: 0, spans, reads: 0 };
    const fuse = new SociFuse(this.mountpoint, ops, mountOptions(this.opts), { ...tables, span: spans?.table.buf });
    try {
      await new Promise<void>((resolve, reject) =>
        fuse.mount((err) => (err ? reject(failedPrecondition(`cannot mount layer ${this.label} at ${this.mountpoint}: ${describe(err)}`, err)) : resolve())),
      );
    } catch (err) {
      spans?.detach();
      throw err;
    }
    this.fuse = fuse;
    this.table = { ...table, stopFlushes: this.opts.opMetrics?.beforeRead?.(() => this.countTableOps()) };
    await this.tuneReadAhead();
  }

  /** The table the addon answers reads of local spans from, while mounted with one. */
  get spanTable(): SpanTable | undefined {
    return this.table?.spans?.table;
  }

  /** getattrs answered by the addon so far: of paths in the layer, and of paths not in it. */
  tableLookups(): { found: number; missing: number } {
    return this.table ? statTableCounts(this.table.buf) : { found: 0, missing: 0 };
  }

  async unmount(): Promise<void> {
    const fuse = this.fuse;
    if (!fuse) return;
    this.fuse = null;
    this.countTableOps();
    this.table?.stopFlushes?.();
    this.table?.spans?.detach();
    // fuse-native never calls back when the mount was already taken away (fusermount -u by an
    // operator), so the wait is bounded and a lazy unmount finishes the job.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(failedPrecondition(`unmount of ${this.mountpoint} did not finish in ${UNMOUNT_WAIT_MS} ms`)), UNMOUNT_WAIT_MS);
      fuse.unmount((err) => {
        clearTimeout(timer);
        if (err) reject(failedPrecondition(`cannot unmount ${this.mountpoint}: ${describe(err)}`, err));
        else resolve();
      });
    }).catch(async (err: unknown) => {
      // fuse-native's unmount fails when the mount is already gone or busy; a lazy unmount then detaches it.
      this.log.warn({ mountpoint: this.mountpoint, err: describe(err) }, 'unmount failed, trying a lazy unmount');
      await lazyUnmount(this.mountpoint).catch(() => undefined);
    });
  }

  /** Adds the getattrs the addon answered since last time to the op metrics. */
  private countTableOps(): void {
    const t = this.table;
    const m = this.opts.opMetrics;
    if (!t || !m) return;
    const { found, missing } = statTableCounts(t.buf);
    const readdirs = dirTableReads(t.dir);
    const newFound = found - t.found;
    const newMissing = missing - t.missing;
    if (newFound + newMissing > 0) m.op('getattr', newFound + newMissing);
    if (newMissing > 0) m.error('getattr', SociFuse.ENOENT, newMissing);
    if (readdirs > t.readdirs) m.op('readdir', readdirs - t.readdirs);
    const reads = t.spans?.table.counts().served ?? 0;
    if (reads > t.reads) m.op('read', reads - t.reads);
    t.reads = reads;
    t.found = found;
    t.missing = missing;
    t.readdirs = readdirs;
  }

  private async tuneReadAhead(): Promise<void> {
    const kb = this.opts.readAheadKb ?? 1024;
    if (kb <= 0) return;
    try {
      await raiseReadAhead(this.mountpoint, kb);
    } catch (err) {
      this.log.warn({ mountpoint: this.mountpoint, err: describe(err) }, 'cannot raise read_ahead_kb');
    }
  }
}
