/** Gzip layers made from real system files for the zran tests, plus the C reference checkpoint lister. */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execOk } from './exec.js';
import { GzipCheckpointer, type CheckpointerResult } from '../../ztoc/gzip-checkpointer.js';
import { gzipSpanRanges } from '../../ztoc/spans.js';
import type { Checkpoint, SpanRange } from '../../ztoc/types.js';

export interface GzFixture {
  name: string;
  gz: string;
  /** `gzip -dc` output of gz. */
  plain: string;
  /** Compressed offsets where a gzip member ends and the next begins (multi-member fixtures). */
  memberStarts: number[];
}

const MiB = 1024 * 1024;

/** The C source lives in test/fixtures; tests run from dist/test/unit, so walk back to the repo. */
export const zranRefSource = fileURLToPath(new URL('../../../test/fixtures/zran-ref.c', import.meta.url));

/** Compiles the reference (needs gcc and zlib1g-dev). */
export async function buildZranRef(dir: string): Promise<string> {
  const bin = join(dir, 'zran-ref');
  await execOk('gcc', ['-O2', '-Wall', '-o', bin, zranRefSource, '-lz']);
  return bin;
}

/** Checkpoint lines "in out bits sha256(window)" from the C reference. */
export async function refCheckpoints(bin: string, gz: string, spanSize: number): Promise<string[]> {
  const res = await execOk(bin, [gz, String(spanSize)]);
  return res.stdout.trim().split('\n');
}

export function checkpointLines(res: CheckpointerResult): string[] {
  return res.checkpoints.map((cp) => `${cp.in} ${cp.out} ${cp.bits} ${sha256(cp.window)}`);
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function sh(script: string): Promise<void> {
  await execOk('sh', ['-c', script]);
}

/** First `bytes` of a tar of a system folder: real, mixed content. */
async function tarHead(dir: string, name: string, folder: string, bytes: number): Promise<string> {
  const out = join(dir, `${name}.tar`);
  await sh(`tar cf - -C / ${folder} 2>/dev/null | head -c ${bytes} > ${out}; test -s ${out}`);
  return out;
}

async function gzipFile(src: string, dst: string, level: number): Promise<void> {
  await sh(`gzip -${level} -n -c ${src} > ${dst}`);
}

async function fixture(dir: string, name: string, gz: string, memberStarts: number[] = []): Promise<GzFixture> {
  const plain = join(dir, `${name}.plain`);
  await sh(`gzip -dc ${gz} > ${plain}`);
  return { name, gz, plain, memberStarts };
}

/** Text and incompressible data interleaved: stored blocks that start mid-byte after Huffman blocks. */
async function mixedFile(dir: string, text: string): Promise<string> {
  const src = await readFile(text);
  const parts: Buffer[] = [];
  for (let off = 0; off < 6 * MiB; off += 96 * 1024) {
    parts.push(src.subarray(off, off + 48 * 1024), randomBytes(40 * 1024 + (off % 7919)));
  }
  const out = join(dir, 'mixed.bin');
  await writeFile(out, Buffer.concat(parts));
  return out;
}

export interface FixtureSet {
  doc: GzFixture;
  lib: GzFixture;
  best: GzFixture;
  mixed: GzFixture;
  random: GzFixture;
  multi: GzFixture;
}

export async function buildFixtures(dir: string): Promise<FixtureSet> {
  const docTar = await tarHead(dir, 'doc', 'usr/share/doc', 12 * MiB);
  const libTar = await tarHead(dir, 'lib', 'usr/lib/x86_64-linux-gnu', 40 * MiB);
  const docGz = join(dir, 'doc.gz');
  await gzipFile(docTar, docGz, 6);
  const libGz = join(dir, 'lib.gz');
  await gzipFile(libTar, libGz, 1);
  const bestGz = join(dir, 'best.gz');
  await sh(`head -c ${6 * MiB} ${libTar} | gzip -9 -n > ${bestGz}`);
  const mixedGz = join(dir, 'mixed.gz');
  await gzipFile(await mixedFile(dir, docTar), mixedGz, 6);
  const randomGz = join(dir, 'random.gz');
  await writeFile(join(dir, 'random.bin'), randomBytes(3 * MiB + 12345));
  await gzipFile(join(dir, 'random.bin'), randomGz, 6);
  const parts = [docGz, randomGz, bestGz, mixedGz];
  const multiGz = join(dir, 'multi.gz');
  await sh(`cat ${parts.join(' ')} > ${multiGz}`);
  const memberStarts: number[] = [];
  let end = 0;
  for (const p of parts.slice(0, -1)) memberStarts.push((end += (await stat(p)).size));
  return {
    doc: await fixture(dir, 'doc', docGz),
    lib: await fixture(dir, 'lib', libGz),
    best: await fixture(dir, 'best', bestGz),
    mixed: await fixture(dir, 'mixed', mixedGz),
    random: await fixture(dir, 'random', randomGz),
    multi: await fixture(dir, 'multi', multiGz, memberStarts),
  };
}

/** Feeds a gzip file to a GzipCheckpointer in `chunkSize` pieces; returns the result and sha256 of the output. */
export async function checkpointFile(
  gz: string,
  spanSize: number,
  chunkSize = 256 * 1024,
): Promise<{ res: CheckpointerResult; outputSha256: string }> {
  return checkpointBytes(await readFile(gz), spanSize, chunkSize);
}

export function checkpointBytes(
  data: Uint8Array,
  spanSize: number,
  chunkSize: number,
): { res: CheckpointerResult; outputSha256: string } {
  const hash = createHash('sha256');
  const cp = new GzipCheckpointer(spanSize, (chunk) => hash.update(chunk));
  for (let off = 0; off < data.length; off += chunkSize) cp.push(data.subarray(off, off + chunkSize));
  const res = cp.end();
  return { res, outputSha256: hash.digest('hex') };
}

/** A fixture read back with its checkpoints and the span ranges they make. */
export interface CheckpointedFixture {
  blob: Buffer;
  plain: Buffer;
  checkpoints: Checkpoint[];
  ranges: SpanRange[];
}

export async function checkpointedFixture(f: GzFixture, spanSize: number): Promise<CheckpointedFixture> {
  const { res } = await checkpointFile(f.gz, spanSize);
  return {
    blob: await readFile(f.gz),
    plain: await readFile(f.plain),
    checkpoints: res.checkpoints,
    ranges: gzipSpanRanges(res.checkpoints, res.compressedSize, res.uncompressedSize),
  };
}
