/**
 * glibc's malloc asks for transparent huge pages (madvise) on the memory it maps when the
 * process starts with this tunable (glibc >= 2.35; others ignore it). Node allocates Buffers,
 * SharedArrayBuffers and zlib output with malloc, and the daemon fills hundreds of MiB of
 * fresh memory in a pull: zTOCs as they download, spans as they are fetched and inflated.
 * On the VMs measured (THP "madvise"), touching fresh memory in 4 KiB pages ran at ~270 MB/s
 * (64 MiB: 205-253 ms) against 13-24 ms in huge pages; the throttled bench at 1 Gbit/s was
 * ~1 s sooner (rpull -0.4 s, ctr run -0.4-0.7 s). glibc reads tunables before main(), so the
 * launchers set it: the systemd unit, and the test and bench helpers.
 */
export const HUGE_PAGE_MALLOC = 'glibc.malloc.hugetlb=1';

/** `env` with the tunable added to any GLIBC_TUNABLES it already has. */
export function withHugePageMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (hugePageMalloc(env)) return env;
  const tunables = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${HUGE_PAGE_MALLOC}` : HUGE_PAGE_MALLOC;
  return { ...env, GLIBC_TUNABLES: tunables };
}

/** Whether a process started with `env` has the tunable. */
export function hugePageMalloc(env: NodeJS.ProcessEnv): boolean {
  return (env.GLIBC_TUNABLES ?? '').split(':').includes(HUGE_PAGE_MALLOC);
}
