/**
 * Push parser over an uncompressed tar stream, for the single-pass zTOC builder.
 *
 * Only header blocks are looked at: entry data is skipped by counting, and the only bytes
 * ever buffered are one split header block or one PAX / GNU long-name record (capped at
 * MAX_META_SIZE, as Go's archive/tar caps it).
 *
 * End of stream, matching Go's tar.Reader as used by the upstream builder:
 * - two zero blocks end the archive; anything after them (record padding) is ignored
 *   and not counted in the size;
 * - EOF right after one zero block, or at a header boundary with no zero block at all, or
 *   inside the last entry's block padding, is accepted too;
 * - EOF anywhere else (inside a header, entry data, or a PAX/long-name record, or after a
 *   PAX/long-name record with no entry) is an error, and so is an empty stream.
 * The size end() returns is the position after the last byte consumed, i.e. normally
 * just after the second zero block.
 *
 * Where this reader knowingly differs from upstream (Go archive/tar + soci getType):
 * PAX global headers ('g') are consumed and their records act as defaults for every later
 * entry (POSIX), where upstream fails with "unsupported input tar entry 'g'"; and '7'
 * (contiguous) entries are regular files, where upstream fails too.
 */
import { invalidArgument } from '../errors/errors.js';
import { buildEntry, type PendingMeta } from './tar-entry.js';
import { BLOCK_SIZE, checksumMatches, cString, decodeHeader, isZeroBlock } from './tar-header.js';
import { parsePaxRecords, type PaxRecords } from './pax.js';
import type { FileMetadata } from './types.js';

/** PAX and GNU long-name records larger than this are rejected (Go: maxSpecialFileSize). */
export const MAX_META_SIZE = 1 << 20;

const FLAG_PAX = 0x78; // 'x'
const FLAG_PAX_GLOBAL = 0x67; // 'g'
const FLAG_LONG_NAME = 0x4c; // 'L'
const FLAG_LONG_LINK = 0x4b; // 'K'

type Phase = 'header' | 'skip' | 'meta' | 'eof1' | 'done';

/** A PAX or long-name record being collected. */
interface MetaRecord {
  flag: number;
  at: number;
  data: Buffer;
  filled: number;
}

const padding = (n: number): number => (BLOCK_SIZE - (n % BLOCK_SIZE)) % BLOCK_SIZE;

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export class TarReader {
  readonly entries: FileMetadata[] = [];
  private phase: Phase = 'header';
  /** Stream bytes consumed (not counting anything after the end-of-archive blocks). */
  private pos = 0;
  private readonly block = Buffer.alloc(BLOCK_SIZE);
  private blockFill = 0;
  /** Bytes left to skip, of which the last `skipPad` are block padding. */
  private skip = 0;
  private skipPad = 0;
  /** The entry whose data is being skipped; '' while skipping a record's padding. */
  private skipEntry = '';
  private meta: MetaRecord | null = null;
  private pending: PendingMeta = { pax: null, longName: null, longLink: null };
  private pendingAt = -1;
  private globals: PaxRecords = new Map();

  push(chunk: Uint8Array): void {
    const buf = asBuffer(chunk);
    let i = 0;
    while (i < buf.length) {
      switch (this.phase) {
        case 'skip':
          i += this.skipBytes(buf.length - i);
          break;
        case 'meta':
          i += this.fillMeta(buf, i);
          break;
        case 'header':
        case 'eof1':
          i += this.readBlock(buf, i);
          break;
        case 'done':
          return;
      }
    }
  }

  end(): number {
    switch (this.phase) {
      case 'meta': {
        const m = this.meta as MetaRecord;
        throw this.truncated(`in the ${recordKind(m.flag)} record at offset ${m.at}`);
      }
      case 'header':
        if (this.blockFill > 0) throw this.truncated(`in the header block at offset ${this.pos - this.blockFill}`);
        break;
      case 'eof1':
        if (this.blockFill > 0) throw this.truncated(`in the end-of-archive block at offset ${this.pos - this.blockFill}`);
        break;
      case 'skip':
        if (this.skip > this.skipPad) {
          throw this.truncated(`in entry ${JSON.stringify(this.skipEntry)} (${this.skip - this.skipPad} data bytes missing)`);
        }
        break;
      case 'done':
        break;
    }
    if (this.pendingAt >= 0) {
      throw invalidArgument(`tar stream ends after the PAX/GNU long-name header at offset ${this.pendingAt} with no entry`);
    }
    if (this.pos === 0) throw invalidArgument('not a tar archive: the stream is empty');
    return this.pos;
  }

  private truncated(where: string): Error {
    return invalidArgument(`tar stream truncated ${where}`);
  }

  private skipBytes(avail: number): number {
    const k = Math.min(this.skip, avail);
    this.skip -= k;
    this.pos += k;
    if (this.skip === 0) this.phase = 'header';
    return k;
  }

  private startSkip(dataBytes: number, entryName: string): void {
    this.skipPad = padding(dataBytes);
    this.skip = dataBytes + this.skipPad;
    this.skipEntry = entryName;
    if (this.skip > 0) this.phase = 'skip';
  }

  /** Consumes up to one block; parses it in place when the chunk holds all of it. */
  private readBlock(buf: Buffer, i: number): number {
    if (this.blockFill === 0 && buf.length - i >= BLOCK_SIZE) {
      this.pos += BLOCK_SIZE;
      this.onBlock(buf, i);
      return BLOCK_SIZE;
    }
    const k = Math.min(BLOCK_SIZE - this.blockFill, buf.length - i);
    buf.copy(this.block, this.blockFill, i, i + k);
    this.blockFill += k;
    this.pos += k;
    if (this.blockFill === BLOCK_SIZE) {
      this.blockFill = 0;
      this.onBlock(this.block, 0);
    }
    return k;
  }

  private onBlock(b: Buffer, off: number): void {
    const at = this.pos - BLOCK_SIZE;
    if (this.phase === 'eof1') {
      if (!isZeroBlock(b, off)) throw invalidArgument(`tar stream has data after an end-of-archive zero block, at offset ${at}`);
      this.phase = 'done';
      return;
    }
    if (isZeroBlock(b, off)) {
      if (this.pendingAt >= 0) {
        throw invalidArgument(`tar stream ends after the PAX/GNU long-name header at offset ${this.pendingAt} with no entry`);
      }
      this.phase = 'eof1';
      return;
    }
    if (!checksumMatches(b, off)) {
      if (at === 0) throw invalidArgument('not a tar archive: the first block is not a valid tar header (bad checksum)');
      throw invalidArgument(`tar header at offset ${at} has a bad checksum`);
    }
    const h = decodeHeader(b, off, at);
    if (isMetaFlag(h.typeflag)) {
      this.startMeta(h.typeflag, h.size, at);
      return;
    }
    const { entry, payload } = buildEntry(h, this.pending, this.globals, at, this.pos);
    this.entries.push(entry);
    this.pending = { pax: null, longName: null, longLink: null };
    this.pendingAt = -1;
    this.startSkip(payload, entry.name);
  }

  private startMeta(flag: number, size: number, at: number): void {
    if (size < 0 || size > MAX_META_SIZE) {
      throw invalidArgument(`tar ${recordKind(flag)} record at offset ${at} has size ${size} (limit ${MAX_META_SIZE})`);
    }
    if (this.pendingAt < 0) this.pendingAt = at;
    this.meta = { flag, at, data: Buffer.alloc(size), filled: 0 };
    this.phase = 'meta';
    if (size === 0) this.finishMeta();
  }

  private fillMeta(buf: Buffer, i: number): number {
    const m = this.meta as MetaRecord;
    const k = Math.min(m.data.length - m.filled, buf.length - i);
    buf.copy(m.data, m.filled, i, i + k);
    m.filled += k;
    this.pos += k;
    if (m.filled === m.data.length) this.finishMeta();
    return k;
  }

  private finishMeta(): void {
    const m = this.meta as MetaRecord;
    this.meta = null;
    this.phase = 'header';
    switch (m.flag) {
      case FLAG_PAX:
        this.pending.pax = parsePaxRecords(m.data, m.at);
        break;
      case FLAG_PAX_GLOBAL:
        this.globals = new Map([...this.globals, ...parsePaxRecords(m.data, m.at)]);
        break;
      case FLAG_LONG_NAME:
        this.pending.longName = cString(m.data, 0, m.data.length);
        break;
      case FLAG_LONG_LINK:
        this.pending.longLink = cString(m.data, 0, m.data.length);
        break;
    }
    if (m.flag === FLAG_PAX_GLOBAL && this.pending.pax === null && this.pending.longName === null && this.pending.longLink === null) {
      this.pendingAt = -1; // a global header alone does not need a following entry
    }
    this.skip = this.skipPad = padding(m.data.length);
    this.skipEntry = '';
    if (this.skip > 0) this.phase = 'skip';
  }
}

function isMetaFlag(flag: number): boolean {
  return flag === FLAG_PAX || flag === FLAG_PAX_GLOBAL || flag === FLAG_LONG_NAME || flag === FLAG_LONG_LINK;
}

function recordKind(flag: number): string {
  if (flag === FLAG_PAX) return 'PAX header';
  if (flag === FLAG_PAX_GLOBAL) return 'PAX global header';
  return flag === FLAG_LONG_NAME ? 'GNU long name' : 'GNU long link';
}

/** Parses a whole in-memory tar stream. */
export function readTar(buf: Uint8Array): { entries: FileMetadata[]; size: number } {
  const r = new TarReader();
  r.push(buf);
  const size = r.end();
  return { entries: r.entries, size };
}
