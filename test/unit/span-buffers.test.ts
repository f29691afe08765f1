import t from 'tap';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SpanBuffers } from '../../fs/span-buffers.js';

const MiB = 1 << 20;

t.test('a retired buffer is handed out again for a span of its capacity', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const a = pool.take(4 * MiB + 100);
  t.equal(a.length, 4 * MiB + 100);
  pool.retire(a);
  t.equal(pool.idleBytes, a.buffer.byteLength, 'kept for reuse');
  const b = pool.take(4 * MiB + 5000);
  t.equal(b.buffer, a.buffer, 'same memory, a span of nearly the same size');
  t.equal(b.length, 4 * MiB + 5000);
  t.equal(pool.idleBytes, 0);
  const c = pool.take(4 * MiB + 5000);
  t.not(c.buffer, a.buffer, 'nothing idle: fresh memory');
});

t.test('a pinned buffer is not reused until its last pin goes', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const a = pool.take(MiB);
  pool.pin(a);
  pool.pin(a);
  pool.retire(a);
  t.not(pool.take(MiB).buffer, a.buffer, 'pinned twice: not reused');
  pool.unpin(a);
  t.not(pool.take(MiB).buffer, a.buffer, 'still pinned once');
  pool.unpin(a);
  t.equal(pool.take(MiB).buffer, a.buffer, 'unpinned and retired: reused');
});

t.test('pinForTurn holds a buffer until the next turn of the event loop', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const a = pool.take(MiB);
  pool.pinForTurn(a);
  pool.retire(a);
  await Promise.resolve();
  t.equal(pool.idleBytes, 0, 'microtasks of this turn still see it intact');
  await nextTurn();
  t.equal(pool.take(MiB).buffer, a.buffer, 'reused after the turn');
});

t.test('reinstate: a buffer the cache takes back is not reused when its pins go', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const a = pool.take(MiB);
  pool.pin(a);
  pool.retire(a);
  pool.reinstate(a);
  pool.unpin(a);
  t.equal(pool.idleBytes, 0);
  t.not(pool.take(MiB).buffer, a.buffer);
});

t.test('a buffer retired twice is handed out once', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const a = pool.take(MiB);
  pool.retire(a);
  pool.retire(a);
  t.equal(pool.idleBytes, a.buffer.byteLength);
  const b = pool.take(MiB);
  const c = pool.take(MiB);
  t.equal(b.buffer, a.buffer);
  t.not(c.buffer, a.buffer, 'the second take gets other memory');
});

t.test('buffers made elsewhere are never reused; idle memory is capped', async (t) => {
  const pool = new SpanBuffers(2 * MiB);
  const foreign = Buffer.alloc(MiB);
  pool.retire(foreign);
  t.equal(pool.idleBytes, 0, 'a Buffer the pool did not make is left to the GC');
  const small = Buffer.allocUnsafe(100);
  pool.retire(small);
  t.equal(pool.idleBytes, 0, 'nor one from Node\'s shared pool');
  const bufs = [pool.take(MiB), pool.take(MiB), pool.take(MiB)];
  for (const b of bufs) pool.retire(b);
  t.equal(pool.idleBytes, 2 * MiB, 'only up to the cap is kept');
});

t.test('a request takes the smallest idle buffer that holds it, up to twice its capacity', async (t) => {
  const pool = new SpanBuffers(64 * MiB);
  const [big, mid, huge] = [pool.take(4 * MiB), pool.take(2 * MiB), pool.take(9 * MiB)];
  for (const b of [big, mid, huge]) pool.retire(b);
  const a = pool.take(1.5 * MiB);
  t.equal(a.buffer, mid.buffer, 'the 2 MiB buffer, not the 4 MiB one');
  t.equal(a.length, 1.5 * MiB);
  t.not(pool.take(MiB).buffer, big.buffer, 'a 4 MiB buffer is more than twice a 1 MiB request: fresh memory');
  t.equal(pool.take(3 * MiB).buffer, big.buffer, 'a 3 MiB request takes the 4 MiB buffer');
  t.equal(pool.idleBytes, huge.buffer.byteLength, 'the 9 MiB one stays idle');
});

t.test('a full pool drops smaller idle buffers for a bigger one, never the other way', async (t) => {
  const pool = new SpanBuffers(4 * MiB);
  const smalls = [pool.take(MiB), pool.take(MiB), pool.take(MiB), pool.take(MiB)];
  const big = pool.take(2 * MiB);
  for (const b of smalls) pool.retire(b);
  t.equal(pool.idleBytes, 4 * MiB, 'full of 1 MiB buffers');
  pool.retire(big);
  t.equal(pool.idleBytes, 4 * MiB, 'two of them made room');
  t.equal(pool.take(2 * MiB).buffer, big.buffer, 'the 2 MiB buffer is kept');
  const other = pool.take(MiB);
  t.ok(smalls.some((b) => b.buffer === other.buffer), 'and two 1 MiB ones');
  pool.retire(pool.take(5 * MiB));
  t.equal(pool.idleBytes, MiB, 'a buffer over the whole cap is not kept');
});
