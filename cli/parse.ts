import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1 << 20, mib: 1 << 20, g: 1 << 30, gib: 1 << 30 };

/** Parses a byte count: `4194304`, `4MiB`, `512k`. */
export function parseBytes(value: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a byte count (e.g. 4194304 or 4MiB)`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${value} is too large`);
  return n;
}

export function parsePositiveBytes(value: string): number {
  const n = parseBytes(value);
  if (n <= 0) throw new InvalidArgumentError('must be greater than 0');
  return n;
}

export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a positive whole number`);
  return n;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}
