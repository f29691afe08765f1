/** Background processes for test services: log capture, readiness polling, kill by PID. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface Service {
  child: ChildProcess;
  logs(): string;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited. */
  kill(graceMs?: number): Promise<void>;
}

export function startService(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Service {
  const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => chunks.push(b));
  child.stderr?.on('data', (b: Buffer) => chunks.push(b));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A spawn failure (e.g. missing binary) shows as an exit; waitFor then reports the logs.
  child.on('error', (e) => chunks.push(Buffer.from(`spawn error: ${e.message}\n`)));
  return {
    child,
    logs: () => Buffer.concat(chunks).toString('utf8'),
    kill: async (graceMs = 3000) => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function isRunning(service: Service): boolean {
  return service.child.exitCode === null && service.child.signalCode === null;
}

/** Polls `ready` until it returns true; fails early if the service exits. */
export async function waitFor(service: Service, what: string, ready: () => Promise<boolean>, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(service)) throw new Error(`${what} exited before it was ready:\n${service.logs()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${service.logs()}`);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a process with this PID still exists (zombies included). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
