/**
 * Empty, non-final deflate blocks used to resume raw inflate in the middle of a byte: node:zlib has
 * no inflatePrime, so the stale low bits of a checkpoint's partial byte are replaced by empty blocks
 * of the same length (mod 8). Shifting the compressed bytes instead is wrong: stored blocks re-align
 * to byte boundaries (see node-stack-facts.md).
 */

interface BitString {
  bytes: number[];
  bitLength: number;
}

class BitWriter implements BitString {
  bytes: number[] = [];
  bitLength = 0;

  /** Appends `n` bits of `value`, least significant first (deflate's bit order for non-Huffman fields). */
  write(value: number, n: number): this {
    for (let i = 0; i < n; i++, this.bitLength++) {
      if (this.bitLength % 8 === 0) this.bytes.push(0);
      if ((value >> i) & 1) this.bytes[this.bytes.length - 1] |= 1 << (this.bitLength % 8);
    }
    return this;
  }
}

/** BFINAL 0, BTYPE 01 (fixed), end-of-block code 0000000: 10 bits. */
function emptyFixedBlock(w: BitWriter): void {
  w.write(0, 1).write(1, 2).write(0, 7);
}

/** Code length code order of RFC 1951 §3.2.7. */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/**
 * An empty dynamic block: 93 bits, odd length mod 8 (5), which fixed blocks (10 bits) cannot give.
 * Literal/length code: only end-of-block (256), length 1; one distance code of length 1 (zlib accepts
 * a single length-1 code as the one permitted incomplete code). The code length code has symbols
 * 1 and 18 of length 1 (complete); all 19 code length code lengths are sent (HCLEN 15).
 */
function emptyDynamicBlock(w: BitWriter): void {
  w.write(0, 1).write(2, 2);
  w.write(0, 5).write(0, 5).write(15, 4);
  for (const sym of CL_ORDER) w.write(sym === 1 || sym === 18 ? 1 : 0, 3);
  // Canonical codes: symbol 1 -> 0, symbol 18 -> 1. 256 zeros as 18x138 + 18x118, then lengths 1, 1.
  w.write(1, 1).write(138 - 11, 7);
  w.write(1, 1).write(118 - 11, 7);
  w.write(0, 1).write(0, 1);
  w.write(0, 1);
}

function buildPrefix(residue: number): BitString {
  const w = new BitWriter();
  let fixed = residue;
  if (residue % 2 === 1) {
    emptyDynamicBlock(w);
    fixed = (residue - 5 + 8) % 8;
  }
  for (let i = 0; i < fixed / 2; i++) emptyFixedBlock(w);
  return w;
}

/** Prefixes by residue (bit length mod 8) 1..7; index 0 unused. */
const PREFIXES: BitString[] = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => (r === 0 ? { bytes: [], bitLength: 0 } : buildPrefix(r)));

/**
 * Raw deflate input that resumes at a checkpoint with `bits` (1-7) pending bits: empty blocks,
 * then the top `bits` bits of `partialByte`. Returns the bytes to feed before the span's second
 * byte; all but the last are prefix-only bytes.
 */
export function primedHead(bits: number, partialByte: number): Uint8Array {
  const p = PREFIXES[8 - bits];
  const head = Uint8Array.from(p.bytes);
  const keepMask = (0xff << (8 - bits)) & 0xff;
  head[head.length - 1] |= partialByte & keepMask;
  return head;
}

/** Bit lengths of the prefixes, for tests: each must be ≡ residue (mod 8). */
export const prefixBitLengths: readonly number[] = PREFIXES.map((p) => p.bitLength);
