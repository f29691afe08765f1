import { invalidArgument } from '../errors/errors.js';
import type { Platform } from './oci.js';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  return { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: ARCH[process.arch] ?? process.arch };
}

/** Parses `os/arch[/variant]` (or `arch` alone, meaning linux) as containerd's platforms package does. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => !/^[a-z0-9._-]+$/.test(p)) || parts.length > 3) {
    throw invalidArgument(`platform ${JSON.stringify(s)} is not of the form os/arch[/variant]`);
  }
  if (parts.length === 1) return normalize({ os: 'linux', architecture: parts[0] });
  return normalize({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

function normalize(p: Platform): Platform {
  const archAlias: Record<string, string> = { x86_64: 'amd64', x86: '386', aarch64: 'arm64', armhf: 'arm' };
  const architecture = archAlias[p.architecture] ?? p.architecture;
  let variant = p.variant;
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  return variant ? { os: p.os, architecture, variant } : { os: p.os, architecture };
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const a = normalize(want);
  const b = normalize(have);
  return a.os === b.os && a.architecture === b.architecture && (!a.variant || a.variant === b.variant);
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return '';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
