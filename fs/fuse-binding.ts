/**
 * fuse-native with the two things its public API lacks: our own mount option string
 * (`ro`, `use_ino`, `negative_timeout` have no option name there), and xattr replies that
 * honour the caller's buffer size (fuse-native copies a truncated value and reports the full
 * length, which the kernel rejects; it also pads listxattr sizes by 128 bytes).
 * Nanosecond stat times and reused read buffers need fuse-native itself patched
 * (third_party/fuse-native, applied by the postinstall): without the first a { sec, nsec } time
 * would throw inside getattr; without the second every read makes an external Buffer, and V8
 * runs a full GC every few dozen MiB served; the third and fourth answer getattr and readdir
 * in C from tables, the fifth reads of local spans.
 */
import Fuse from 'fuse-native';
import { failedPrecondition } from '../errors/errors.js';

/** Each patch the patched index.js marks with a flag, by the file it came from. */
const PATCH_FLAGS: ReadonlyArray<readonly [string, true | undefined]> = [
  ['nanosecond-times.patch', Fuse.STAT_TIMES_NSEC],
  ['reused-read-buffer.patch', Fuse.REUSED_READ_BUFFER],
  ['stat-table.patch', Fuse.STAT_TABLE],
  ['dir-table.patch', Fuse.DIR_TABLE],
  ['span-reads.patch', Fuse.SPAN_READS],
];

function requirePatches(): void {
  for (const [patch, flag] of PATCH_FLAGS) {
    if (flag !== true) throw failedPrecondition(`fuse-native lacks third_party/fuse-native/${patch}: run npm ci (its postinstall patches and rebuilds it)`);
  }
}

export class SociFuse extends Fuse {
  private readonly optionString: string;

  /**
   * `tables`: getattr, readdir and reads of local spans answered in C from them (fs/stat-table.ts,
   * fs/span-table.ts); the instance keeps them alive while mounted.
   */
  constructor(mnt: string, ops: Fuse.Operations, mountOptions: readonly string[], tables?: { stat: Buffer; dir: Buffer; span?: Buffer }) {
    requirePatches();
    // fuse-native's own per-op timeout would answer ETIMEDOUT to a read waiting on a registry.
    super(mnt, ops, { timeout: false });
    this._statTable = tables?.stat;
    this._dirTable = tables?.dir;
    this._spanTable = tables?.span;
    this.optionString = `-o${mountOptions.join(',')}`;
  }

  protected override _fuseOptions(): string {
    return this.optionString;
  }

  protected override _op_getxattr(signal: Fuse.Signal, path: string, name: string, valueBuf: Buffer): void {
    const get = this.ops.getxattr as NonNullable<Fuse.Operations['getxattr']>;
    get(path, name, 0, (err, value) => {
      if (err) return signal(err, valueBuf.buffer);
      if (!value) return signal(Fuse.ENODATA, valueBuf.buffer);
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer);
      if (value.length > valueBuf.length) return signal(Fuse.ERANGE, valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }

  protected override _op_listxattr(signal: Fuse.Signal, path: string, listBuf: Buffer): void {
    const list = this.ops.listxattr as NonNullable<Fuse.Operations['listxattr']>;
    list(path, (err, names) => {
      if (err) return signal(err, listBuf.buffer);
      const packed = Buffer.from((names ?? []).map((n) => `${n}\0`).join(''));
      if (listBuf.length === 0) return signal(packed.length, listBuf.buffer);
      if (packed.length > listBuf.length) return signal(Fuse.ERANGE, listBuf.buffer);
      packed.copy(listBuf);
      return signal(packed.length, listBuf.buffer);
    });
  }
}
