/** Drives the flatc compiler as an independent FlatBuffers implementation in tests. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Schemas live in the source tree; tests run from dist/test/..., three levels below the repo root. */
export const schemaPath = (name: string): string =>
  fileURLToPath(new URL(`../../../ztoc/${name}`, import.meta.url));

/** Private-use marker standing in for flatc's non-JSON `\xHH` escapes (raw non-UTF-8 bytes). */
const RAW_BASE = 0xf700;

export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'soci-flatc-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** flatc's JSON view of a binary buffer; strings keep raw bytes recoverable via `flatcBytes`. */
export function flatcToJson(schema: string, bin: Uint8Array): unknown {
  return withTempDir((dir) => {
    const file = join(dir, 'buf.bin');
    writeFileSync(file, bin);
    execFileSync('flatc', ['--json', '--strict-json', '--allow-non-utf8', '--raw-binary', '--defaults-json', '-o', dir, schemaPath(schema), '--', file]);
    const text = readFileSync(join(dir, 'buf.json'), 'utf8');
    const hex = (_m: string, pre: string, h: string): string => `${pre}\\u${(RAW_BASE + parseInt(h, 16)).toString(16)}`;
    return JSON.parse(text.replace(/(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})/g, hex));
  });
}

/** The bytes of a string parsed from `flatcToJson` output. */
export function flatcBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp >= RAW_BASE && cp < RAW_BASE + 256) out.push(cp - RAW_BASE);
    else out.push(...Buffer.from(ch, 'utf8'));
  }
  return Uint8Array.from(out);
}

/** A JSON string literal flatc turns into exactly these bytes (flatc accepts `\xHH`). */
export function flatcBinaryLiteral(b: Uint8Array): string {
  return '"' + Array.from(b, (x) => '\\x' + x.toString(16).padStart(2, '0')).join('') + '"';
}

/** flatc -b: builds a binary from JSON text (flatc's own builder, not ours). */
export function flatcFromJson(schema: string, json: string): Uint8Array {
  return withTempDir((dir) => {
    const file = join(dir, 'in.json');
    writeFileSync(file, json);
    execFileSync('flatc', ['--allow-non-utf8', '-b', '-o', dir, schemaPath(schema), file]);
    return new Uint8Array(readFileSync(join(dir, 'in.bin')));
  });
}
