/** Runs commands for tests: captured output, and failures that carry stderr. */
import { spawn, type SpawnOptions } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  /** stdout as bytes, for binary output. */
  stdoutBuffer: Buffer;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
}

/** Runs a command to completion; never throws for a non-zero exit (see execOk). */
export function execCapture(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const spawnOpts: SpawnOptions = { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBuffer = Buffer.concat(out);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({ stdout: stdoutBuffer.toString('utf8'), stdoutBuffer, stderr, code: code ?? (signal ? 128 : -1) });
    });
    // A command that never reads stdin closes it early: EPIPE then is not a failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs a command; throws with its stderr on a non-zero exit. */
export async function execOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const res = await execCapture(cmd, args, opts);
  if (res.code !== 0) {
    const shown = [cmd, ...args].join(' ');
    throw new Error(`${shown} exited with ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return res;
}
