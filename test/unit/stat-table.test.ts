import t from 'tap';
import { buildDirTable, buildStatTable, dirTableReads, fnv1a32, listDir, lookupStat, statTableCounts, STAT_WORDS } from '../../fs/stat-table.js';

const words = (seed: number): Uint32Array => Uint32Array.from({ length: STAT_WORDS }, (_v, i) => (seed * 31 + i) >>> 0);

t.test('fnv1a32 is the 32-bit FNV-1a the addon computes', async (t) => {
  t.equal(fnv1a32(Buffer.from('')), 0x811c9dc5);
  t.equal(fnv1a32(Buffer.from('a')), 0xe40c292c);
  t.equal(fnv1a32(Buffer.from('foobar')), 0xbf9cf968);
});

t.test('every path is found with its stat words; other paths are not', async (t) => {
  const paths = ['/', '/etc', '/etc/passwd', '/usr/lib/ünïcode ✓', ...Array.from({ length: 5000 }, (_v, i) => `/d${i % 37}/f${i}`)];
  const table = buildStatTable(paths.map((p, i) => [p, words(i)] as const));
  const [slots, entries] = new Uint32Array(table.buffer, 0, 2);
  t.equal(entries, paths.length);
  t.ok(slots >= 2 * paths.length && (slots & (slots - 1)) === 0, `${slots} slots, a power of 2, half empty or more`);
  let wrong = 0;
  paths.forEach((p, i) => {
    const got = lookupStat(table, p);
    if (!got || !Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(words(i).buffer))) wrong++;
  });
  t.equal(wrong, 0, `all ${paths.length} paths found with their words`);
  for (const p of ['/etc/', '/etc/passw', '/etc/passwd2', '', '/d1/f0', '/usr/lib/unicode ✓']) t.equal(lookupStat(table, p), undefined, `${JSON.stringify(p)} is not in the table`);
  t.same(statTableCounts(table), { found: 0, missing: 0 }, 'counters start at 0');
  t.equal(table.byteOffset % 8, 0, 'counters 8-byte aligned');
});

t.test('an empty layer and bad stat words', async (t) => {
  t.equal(lookupStat(buildStatTable([]), '/'), undefined);
  t.throws(() => buildStatTable([['/', new Uint32Array(3)]]), /stat of \/ has 3 words, not 21/);
});

t.test('the dir table lists each directory in listing order, with its parent', async (t) => {
  const paths = ['/', '/z', '/a', '/a/ünï ✓', '/a/b', '/a/b/c', '/f'];
  const children: Record<string, string[]> = { '/': ['z', 'a', 'f'], '/a': ['ünï ✓', 'b'], '/a/b': ['c'] };
  const table = buildDirTable(paths.map((p) => [p, children[p]] as const));
  t.same(listDir(table, paths, '/'), ['.', '..', 'z', 'a', 'f']);
  t.same(listDir(table, paths, '/a'), ['.', '..', 'ünï ✓', 'b']);
  t.same(listDir(table, paths, '/a/b/c'), ['.', '..'], 'a file has no children');
  const w = new Uint32Array(table.buffer, table.byteOffset, table.length / 4);
  const parentOf = (p: string): string => paths[w[4 + paths.indexOf(p) * 3]];
  t.same(['/', '/a', '/a/b/c'].map(parentOf), ['/', '/', '/a/b']);
  t.equal(dirTableReads(table), 0, 'counter starts at 0');
  t.throws(() => buildDirTable([['/', ['missing']]]), /child missing of \/ has no entry/);
});
