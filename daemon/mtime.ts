/**
 * Setting nanosecond mtimes from Node. fs.utimes takes seconds as a double, and libuv 1.46
 * (Node 20) turns it into tv_sec = trunc(t), tv_nsec = trunc((t - tv_sec) * 1e9) rounded down
 * to a whole microsecond. So the best Node can do is the mtime truncated to the microsecond:
 * we aim at the middle of that microsecond (a double's step near 1.7e9 s is 238 ns) and check
 * the result with libuv's arithmetic. Node replaces negative times by "now", so pre-1970 times,
 * and any the check rejects, go through `touch -h -d @S.N` (exact, one process each).
 */
import { spawnSync } from 'node:child_process';
import { futimesSync, lutimesSync } from 'node:fs';
import { internal } from '../errors/errors.js';
import type { UnixTime } from '../ztoc/go-time.js';
import { normalizeTime } from '../ztoc/go-time.js';

const NS = 1_000_000_000n;

/** What libuv 1.46's uv__fs_to_timespec makes of a non-negative double, in nanoseconds. */
export function libuvTimespecNs(d: number): bigint {
  const sec = Math.trunc(d);
  let nsec = Math.trunc((d - sec) * 1e9);
  nsec -= nsec % 1000;
  return BigInt(sec) * NS + BigInt(nsec);
}

/** Seconds for fs.utimes that set `t` truncated to the microsecond; null when Node cannot. */
export function utimesSeconds(t: UnixTime): number | null {
  const { sec, nsec } = normalizeTime(t);
  if (sec < 0 || !Number.isSafeInteger(sec)) return null;
  const us = Math.floor(nsec / 1000);
  const d = sec + (us * 1000 + 500) / 1e9;
  return libuvTimespecNs(d) === BigInt(sec) * NS + BigInt(us * 1000) ? d : null;
}

const abs = (v: bigint): bigint => (v < 0n ? -v : v);

/** `touch` arguments setting a time exactly, without following a symlink. */
export function touchArgs(path: string, t: UnixTime): string[] {
  const { sec, nsec } = normalizeTime(t);
  // GNU date reads "@-1.25" as -1.25 s: the sign covers the fraction too.
  const total = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  const mag = abs(total);
  const stamp = `@${total < 0n ? '-' : ''}${mag / 1_000_000_000n}.${String(mag % 1_000_000_000n).padStart(9, '0')}`;
  return ['-h', '--no-create', '-d', stamp, '--', path];
}

/**
 * Sets atime and mtime (both to the entry's mtime, as containerd does when atime is absent)
 * through `fd` when given, else the path itself (never following a symlink).
 */
export function setTimesSync(path: string, t: UnixTime, fd?: number): void {
  const s = utimesSeconds(t);
  if (s === null) {
    const args = touchArgs(path, t);
    const res = spawnSync('touch', args, { encoding: 'utf8' });
    if (res.status !== 0) throw internal(`setting mtime ${args[3]} on ${path}: ${res.error?.message ?? res.stderr.trim()}`);
  } else if (fd !== undefined) futimesSync(fd, s, s);
  else lutimesSync(path, s, s);
}
