/** Device numbers as Linux encodes them for stat's st_rdev and the FUSE protocol's 32-bit rdev. */
import { invalidArgument } from '../errors/errors.js';

/** FUSE carries rdev in 32 bits (the kernel's new_encode_dev): major 12 bits, minor 20 bits. */
export const MAX_MAJOR = 0xfff;
export const MAX_MINOR = 0xfffff;

/** glibc's makedev() for numbers that fit in 32 bits: mmmM MMmm with minor split around major. */
export function makedev(major: number, minor: number, what: string): number {
  if (!Number.isInteger(major) || !Number.isInteger(minor) || major < 0 || minor < 0 || major > MAX_MAJOR || minor > MAX_MINOR) {
    throw invalidArgument(`${what}: device ${major}:${minor} cannot be represented (major <= ${MAX_MAJOR}, minor <= ${MAX_MINOR})`);
  }
  return ((major << 8) | (minor & 0xff) | ((minor & 0xfff00) << 12)) >>> 0;
}

export function devMajor(rdev: number): number {
  return (rdev >>> 8) & 0xfff;
}

export function devMinor(rdev: number): number {
  return ((rdev & 0xff) | ((rdev >>> 12) & 0xfff00)) >>> 0;
}
