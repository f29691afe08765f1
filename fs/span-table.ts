/**
 * A mount's span files laid out for the patched fuse-native addon (third_party/fuse-native/
 * span-reads.patch): a read whose spans are all on disk and verified is answered in C with
 * pread()s of the span files on the FUSE thread, without waking the JS thread; any other read
 * (a span still to fetch, only in memory, or a file gone meanwhile) comes to JS as before.
 *
 * JS keeps the states right: a span is marked local (its file name in its slot) only once its
 * file is complete and verified, and unmarked before the file is deleted; a reader in C that
 * raced the deletion fails to open or read the file and hands the read to JS.
 *
 * Layout (uint64 words): [0] spans S, [1] entries N, [2] reads answered in C, [3] reads passed
 * to JS, [4] byte offset of the span directory, [5-7] unused, then S + 1 span bounds, the N
 * entries' data offsets (stat-table order), S per-span byte counters of reads answered in C,
 * then S uint32 states padded to 8 bytes, S name slots of 80 bytes, and the directory.
 */
const HEADER = 8;
export const SPAN_NAME_BYTES = 80;

export class SpanTable {
  readonly buf: Buffer;
  private readonly words: BigUint64Array;
  private readonly state: Uint32Array;
  private readonly namesAt: number;
  private readonly servedAt: number;

  /**
   * `bounds`: each span's first uncompressed offset, then the layer's end; `dataOffsets`: each
   * stat-table entry's data offset in the layer (0 for non-files); `directory`: where the span
   * files are (a trailing '/' is added).
   */
  constructor(bounds: readonly number[], dataOffsets: readonly number[], directory: string) {
    const spans = Math.max(0, bounds.length - 1);
    const dir = Buffer.from(`${directory.replace(/\/+$/, '')}/\0`, 'utf8');
    const wordsBefore = HEADER + spans + 1 + dataOffsets.length + spans;
    const stateWords = Math.ceil(spans / 2);
    this.namesAt = (wordsBefore + stateWords) * 8;
    const dirAt = this.namesAt + spans * SPAN_NAME_BYTES;
    // Its own ArrayBuffer: 8-byte aligned for the addon's 64-bit words.
    this.buf = Buffer.from(new ArrayBuffer(dirAt + dir.length));
    this.words = new BigUint64Array(this.buf.buffer, 0, wordsBefore);
    this.state = new Uint32Array(this.buf.buffer, wordsBefore * 8, spans);
    this.servedAt = HEADER + spans + 1 + dataOffsets.length;
    const w = this.words;
    w[0] = BigInt(spans);
    w[1] = BigInt(dataOffsets.length);
    w[4] = BigInt(dirAt);
    bounds.forEach((b, i) => (w[HEADER + i] = BigInt(b)));
    dataOffsets.forEach((d, i) => (w[HEADER + spans + 1 + i] = BigInt(d)));
    dir.copy(this.buf, dirAt);
  }

  get spans(): number {
    return this.state.length;
  }

  /** The span's verified file `file` (in the directory) answers reads from now on. */
  setLocal(id: number, file: string): void {
    if (!this.inRange(id)) return;
    const name = Buffer.from(file, 'utf8');
    if (name.length >= SPAN_NAME_BYTES) throw new RangeError(`span file name ${file} is longer than ${SPAN_NAME_BYTES - 1} bytes`);
    this.state[id] = 0;
    const at = this.namesAt + id * SPAN_NAME_BYTES;
    this.buf.fill(0, at, at + SPAN_NAME_BYTES);
    name.copy(this.buf, at);
    // Written after the name: the addon reads the state first, then the name.
    Atomics.store(this.state, id, 1);
  }

  /** The span's file is about to go: reads of it come to JS again. */
  clearLocal(id: number): void {
    if (this.inRange(id)) Atomics.store(this.state, id, 0);
  }

  isLocal(id: number): boolean {
    return this.inRange(id) && Atomics.load(this.state, id) === 1;
  }

  /** Bytes of this span that reads answered in C. */
  servedBytes(id: number): number {
    return this.inRange(id) ? Number(this.words[this.servedAt + id]) : 0;
  }

  /** Reads answered in C, and reads the addon passed to JS. */
  counts(): { served: number; passed: number } {
    return { served: Number(this.words[2]), passed: Number(this.words[3]) };
  }

  private inRange(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.state.length;
  }
}

/** How often a mount's table is checked for spans read in C for the first time. */
const FOLLOW_MS = 20;

/**
 * Calls `firstRead(id)` for each span that reads answered in C started on (checked every
 * 20 ms while reads are answered, not at all while none are); returns the function that stops it.
 * Polled rather than signalled: a call from the FUSE thread into JS would outlive an unmount.
 */
export function followFirstReads(table: SpanTable, firstRead: (id: number) => void): () => void {
  const seen = new Uint8Array(table.spans);
  let served = 0;
  const timer = setInterval(() => {
    const now = table.counts().served;
    if (now === served) return;
    served = now;
    for (let id = 0; id < seen.length; id++) {
      if (seen[id] === 0 && table.servedBytes(id) > 0) {
        seen[id] = 1;
        firstRead(id);
      }
    }
  }, FOLLOW_MS);
  timer.unref();
  return () => clearInterval(timer);
}
