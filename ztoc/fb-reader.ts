/**
 * A bounds-checked FlatBuffers reader. The flatbuffers package trusts its input: a hostile
 * offset makes it read undefined bytes, throw RangeError or allocate huge arrays. Every
 * access here is checked against the buffer first, and the total decoded size is capped so
 * that shared sub-objects (one table referenced a million times) cannot amplify a small
 * buffer into gigabytes.
 */
import { ByteBuffer } from 'flatbuffers';
import { invalidArgument } from '../errors/errors.js';

/** A table whose vtable and inline area were checked to lie inside the buffer. */
export interface FbTable {
  pos: number;
  vtable: number;
  vtableSize: number;
  tableSize: number;
}

/** A vector whose elements were checked to lie inside the buffer. */
export interface FbVector {
  start: number;
  length: number;
}

/** Per-object charge against the decode budget, so millions of tiny objects also count. */
const OBJECT_COST = 16;

export class FbReader {
  private readonly bb: ByteBuffer;
  private readonly bytes: Uint8Array;
  /** Node's native UTF-8 slicing avoids a view object per string (20,000-entry zTOCs have ~150,000). */
  private readonly text: Buffer;
  private budget: number;

  /** `prefix` starts every error message, e.g. "ztoc". */
  constructor(
    private readonly prefix: string,
    bytes: Uint8Array,
  ) {
    // A plain Uint8Array view: on a Buffer, slice() would return a view instead of a copy.
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bb = new ByteBuffer(this.bytes);
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.budget = 16 * bytes.length + (1 << 20);
  }

  fail(msg: string): never {
    throw invalidArgument(`${this.prefix}: ${msg}`);
  }

  private need(pos: number, size: number, what: string): void {
    if (pos < 0 || size < 0 || pos + size > this.bytes.length) {
      this.fail(`${what} at offset ${pos} (+${size} bytes) lies outside the ${this.bytes.length}-byte buffer`);
    }
  }

  private charge(n: number): void {
    this.budget -= n;
    if (this.budget < 0) this.fail('decoded data exceeds 16x the buffer size (shared or looping sub-objects)');
  }

  root(what: string): FbTable {
    this.need(0, 4, 'root offset');
    return this.table(this.bb.readUint32(0), what);
  }

  table(pos: number, what: string): FbTable {
    this.need(pos, 4, what);
    const vtable = pos - this.bb.readInt32(pos);
    this.need(vtable, 4, `${what} vtable`);
    const vtableSize = this.bb.readUint16(vtable);
    const tableSize = this.bb.readUint16(vtable + 2);
    if (vtableSize < 4 || vtableSize % 2 !== 0) this.fail(`${what} vtable has invalid size ${vtableSize}`);
    if (tableSize < 4) this.fail(`${what} has invalid inline size ${tableSize}`);
    this.need(vtable, vtableSize, `${what} vtable`);
    this.need(pos, tableSize, what);
    this.charge(OBJECT_COST);
    return { pos, vtable, vtableSize, tableSize };
  }

  /** Absolute position of field `id` (of `size` inline bytes), or 0 when absent. */
  private field(t: FbTable, id: number, size: number, what: string): number {
    const slot = 4 + 2 * id;
    if (slot + 2 > t.vtableSize) return 0;
    const off = this.bb.readUint16(t.vtable + slot);
    if (off === 0) return 0;
    if (off < 4 || off + size > t.tableSize) this.fail(`${what} lies outside its table`);
    return t.pos + off;
  }

  int8(t: FbTable, id: number, def: number, what: string): number {
    const p = this.field(t, id, 1, what);
    return p === 0 ? def : this.bb.readInt8(p);
  }

  int32(t: FbTable, id: number, what: string): number {
    const p = this.field(t, id, 4, what);
    return p === 0 ? 0 : this.bb.readInt32(p);
  }

  uint32(t: FbTable, id: number, what: string): number {
    const p = this.field(t, id, 4, what);
    return p === 0 ? 0 : this.bb.readUint32(p);
  }

  /**
   * A non-negative int64 that fits a JS number exactly. Read as two 32-bit halves: the
   * bigint path (ByteBuffer.readInt64) allocates, which dominates decoding large TOCs.
   */
  safeInt64(t: FbTable, id: number, what: string): number {
    const p = this.field(t, id, 8, what);
    if (p === 0) return 0;
    const hi = this.bb.readInt32(p + 4);
    if (hi < 0 || hi > 0x1fffff) this.fail(`${what} ${this.bb.readInt64(p)} is negative or above 2^53-1`);
    return hi * 0x100000000 + this.bb.readUint32(p);
  }

  /** Target of the uoffset stored at `p`, checked to leave room for a length word. */
  private follow(p: number, what: string): number {
    const target = p + this.bb.readUint32(p);
    this.need(target, 4, what);
    return target;
  }

  private ref(t: FbTable, id: number, what: string): number {
    const p = this.field(t, id, 4, what);
    return p === 0 ? 0 : this.follow(p, what);
  }

  /** Checks the string whose length word is at `target`; returns the start of its bytes. */
  private stringAt(target: number, what: string): number {
    const n = this.bb.readUint32(target);
    this.need(target + 4, n, what);
    this.charge(n + OBJECT_COST);
    return target + 4;
  }

  private decodeAt(target: number, what: string): string {
    const start = this.stringAt(target, what);
    return this.text.toString('utf8', start, start + this.bb.readUint32(target));
  }

  /** A copy of a string field's raw bytes, or null when the field is absent. */
  bytesField(t: FbTable, id: number, what: string): Uint8Array | null {
    const target = this.ref(t, id, what);
    if (target === 0) return null;
    const start = this.stringAt(target, what);
    return this.bytes.slice(start, start + this.bb.readUint32(target));
  }

  /** A string field decoded as UTF-8 (invalid sequences become U+FFFD), or null when absent. */
  stringField(t: FbTable, id: number, what: string): string | null {
    const target = this.ref(t, id, what);
    return target === 0 ? null : this.decodeAt(target, what);
  }

  tableField(t: FbTable, id: number, what: string): FbTable | null {
    const target = this.ref(t, id, what);
    return target === 0 ? null : this.table(target, what);
  }

  /** A vector of `elemSize`-byte elements; absent vectors read as empty. */
  vector(t: FbTable, id: number, elemSize: number, what: string): FbVector {
    const target = this.ref(t, id, what);
    if (target === 0) return { start: 0, length: 0 };
    const length = this.bb.readUint32(target);
    this.need(target + 4, length * elemSize, `${what} (${length} elements)`);
    this.charge(length * (elemSize === 1 ? 1 : OBJECT_COST));
    return { start: target + 4, length };
  }

  vectorBytes(v: FbVector): Uint8Array {
    return this.bytes.subarray(v.start, v.start + v.length);
  }

  vectorTable(v: FbVector, i: number, what: string): FbTable {
    return this.table(this.follow(v.start + 4 * i, what), what);
  }

  vectorString(v: FbVector, i: number, what: string): string {
    return this.decodeAt(this.follow(v.start + 4 * i, what), what);
  }
}
