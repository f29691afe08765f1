import t from 'tap';
import type { BodyAlloc } from '../../fetcher/registry/http.js';
import { LinkEstimate, timedBody, type BodyTiming } from '../../fs/link-estimate.js';

const body = (tailBytes: number, tailMs: number): BodyTiming => ({ bytes: tailBytes, ms: tailMs, tailBytes, tailMs });

t.test('nothing measured: never worth fetching more', async (t) => {
  const link = new LinkEstimate();
  t.equal(link.worthFetching(1, 0.99), false);
  link.noteBody(body(1e6, 10));
  t.equal(link.worthFetching(1, 0.99), false, 'a rate alone is not enough');
  t.equal(link.bodyRate, 1e8);
  t.equal(link.missFixedSeconds, undefined);
});

t.test('a fast link: a span is worth it at even odds, not at long odds', async (t) => {
  const link = new LinkEstimate();
  link.noteBody(body(1e6, 10)); // 100 kB per ms: 400 kB take 4 ms
  link.noteMiss(30, 5); // 25 ms of a miss do not depend on its size
  t.equal(link.missFixedSeconds, 0.025);
  t.equal(link.worthFetching(400_000, 0.5), true, '0.5 x 25 ms saved > 0.5 x 4 ms wasted');
  t.equal(link.worthFetching(400_000, 0.1), false, '0.1 x 25 ms saved < 0.9 x 4 ms wasted');
});

t.test('a slow link: only spans very likely to be read', async (t) => {
  const link = new LinkEstimate();
  link.noteBody(body(10_000, 1)); // 10 kB per ms: 400 kB take 40 ms
  link.noteMiss(60, 40); // 20 ms fixed
  t.equal(link.worthFetching(400_000, 0.5), false, '10 ms saved < 20 ms wasted');
  t.equal(link.worthFetching(400_000, 0.75), true, '15 ms saved > 10 ms wasted');
});

t.test('bodies that arrive whole have no measurable tail: an infinite rate, any span is cheap', async (t) => {
  const link = new LinkEstimate();
  link.noteBody(body(0, 0));
  link.noteMiss(10, 1);
  t.equal(link.bodyRate, Infinity);
  t.equal(link.worthFetching(4 << 20, 0.01), true);
});

t.test('the averages follow a link that slows down; big bodies weigh more than small ones', async (t) => {
  const link = new LinkEstimate();
  link.noteBody(body(1e6, 10));
  link.noteMiss(25, 0);
  t.equal(link.worthFetching(400_000, 0.5), true);
  for (let i = 0; i < 30; i++) link.noteBody(body(1e5, 100)); // 1 kB per ms
  t.equal(link.worthFetching(400_000, 0.5), false, 'now 400 ms per span');
  const mixed = new LinkEstimate();
  mixed.noteBody(body(1e6, 100)); // 10 kB per ms
  mixed.noteBody(body(100, 1)); // a tiny body, slow in itself
  // Averaging rates would give 8.0e6 (10 kB/ms pulled towards 0.1 kB/ms by a fifth).
  t.ok(mixed.bodyRate! > 9.9e6 && mixed.bodyRate! < 1e7, `ratio of averages: ${mixed.bodyRate}`);
  link.noteMiss(-1, 0);
  link.noteBody({ bytes: 1, ms: 1, tailBytes: Number.NaN, tailMs: 1 });
  t.ok(Number.isFinite(link.bodyRate!), 'nonsense samples are ignored');
});

t.test('timedBody: size, tail after the first piece, pieces passed on, a retry restarts the clock', async (t) => {
  const told: number[] = [];
  const inner: BodyAlloc = Object.assign((n: number) => Buffer.alloc(n), { received: (b: number) => void told.push(b) });
  const done: BodyTiming[] = [];
  const alloc = timedBody(inner, (x) => void done.push(x));
  t.equal(alloc(100).length, 100);
  alloc.received?.(40);
  alloc.received?.(70);
  t.equal(done.length, 0, 'not done before the last byte');
  alloc.received?.(100);
  t.same(told, [40, 70, 100]);
  t.equal(done.length, 1);
  t.equal(done[0].bytes, 100);
  t.equal(done[0].tailBytes, 60);
  t.ok(done[0].ms >= done[0].tailMs && done[0].tailMs >= 0);
  alloc(100);
  alloc.received?.(50);
  alloc(100); // the client retried: a new body
  alloc.received?.(100);
  t.equal(done.length, 2);
  t.equal(done[1].tailBytes, 0, 'the retried body came in one piece');
});
