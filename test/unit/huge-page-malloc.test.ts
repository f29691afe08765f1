import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { HUGE_PAGE_MALLOC, hugePageMalloc, withHugePageMalloc } from '../../daemon/huge-page-malloc.js';

t.test('the tunable is added to the environment once, after any the caller has', async (t) => {
  t.same(withHugePageMalloc({ PATH: '/bin' }), { PATH: '/bin', GLIBC_TUNABLES: HUGE_PAGE_MALLOC });
  const merged = withHugePageMalloc({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  t.equal(merged.GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${HUGE_PAGE_MALLOC}`);
  t.equal(withHugePageMalloc(merged).GLIBC_TUNABLES, merged.GLIBC_TUNABLES, 'not twice');
  t.ok(hugePageMalloc(merged));
  t.notOk(hugePageMalloc({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }));
  t.notOk(hugePageMalloc({}));
});

/** Anonymous huge page bytes of a node process that fills a 64 MiB Buffer, started with `env`. */
async function hugeBytesAfterFill(env: NodeJS.ProcessEnv): Promise<number> {
  const script = `const b = Buffer.allocUnsafe(64 << 20); b.fill(1);
    const m = /AnonHugePages:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8'));
    console.log(m ? Number(m[1]) * 1024 : -1);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env });
  return Number(stdout.trim());
}

t.test('a process started with it gets its Buffers in huge pages (when the kernel offers them)', async (t) => {
  const mode = /\[(\w+)\]/.exec(await readFile('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  const without = await hugeBytesAfterFill({ ...process.env, GLIBC_TUNABLES: '' });
  const withIt = await hugeBytesAfterFill(withHugePageMalloc({ ...process.env, GLIBC_TUNABLES: '' }));
  t.comment(`THP ${mode}: ${without} bytes in huge pages without the tunable, ${withIt} with it`);
  if (mode === 'never') {
    t.equal(withIt, 0, 'THP off: no huge pages either way');
  } else {
    t.ok(withIt >= 32 << 20, `at least half of the 64 MiB in huge pages (${withIt})`);
    if (mode === 'madvise') t.ok(without < withIt, 'madvise mode: fewer without the tunable');
  }
});
