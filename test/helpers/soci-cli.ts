import { fileURLToPath } from 'node:url';
import { execCapture, type ExecResult } from './exec.js';

/** The built CLI entry point (tests run from dist/test/...). */
export const SOCI_CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** Runs `soci --root ROOT ARGS...`; never throws for exit codes. */
export function soci(root: string, args: string[], extra: string[] = []): Promise<ExecResult> {
  return execCapture(process.execPath, [SOCI_CLI, '--root', root, ...extra, ...args], { timeoutMs: 300_000 });
}
