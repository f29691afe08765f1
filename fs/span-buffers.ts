/**
 * Span-sized buffers that are used again once they leave the memory cache. Every Buffer of a
 * few MiB is external memory to V8, and a stream of fresh ones (4 MiB per span read from the
 * disk cache) made it run a full GC every few dozen MiB served: a quarter to a half of the JS
 * thread while a reader streamed through a layer. Reusing them keeps the warm read path free
 * of garbage.
 *
 * A buffer may still be read after the cache let go of it: a disk write or hash of it is
 * running, or a reader was handed it and copies from it in its next continuation. Holders pin
 * it; it is reused only once retired by the cache and no longer pinned. Only buffers made here
 * are reused (a small Buffer from Node's shared pool must never be). They are shared memory, so
 * the inflate worker threads write spans straight into them.
 */
import { setImmediate as onNextTurn } from 'node:timers';

/** Capacities are rounded up to this, so spans of nearly one size share buffers. */
const CAPACITY_STEP = 256 * 1024;

export class SpanBuffers {
  private readonly free = new Map<number, SharedArrayBuffer[]>();
  private freeBytes = 0;
  private readonly own = new WeakSet<SharedArrayBuffer>();
  private readonly pins = new Map<SharedArrayBuffer, number>();
  private readonly retired = new Set<SharedArrayBuffer>();
  /** Buffers in `free`: a second retire of one must not hand it out twice. */
  private readonly idle = new Set<SharedArrayBuffer>();

  /** @param maxFreeBytes cap on buffers kept for reuse while nobody needs them */
  constructor(private readonly maxFreeBytes: number) {}

  /**
   * A buffer of `size` bytes (contents undefined): the smallest idle one that holds it and is
   * at most twice its capacity, else fresh memory. Requests come in many sizes (a Range GET's
   * body spans one or several spans), so only exact capacities matching left most of a cold
   * read's buffers fresh: 1.4 GiB of zeroed, faulted-in memory in a 1.7 GiB layer.
   */
  take(size: number): Buffer {
    const cap = Math.max(CAPACITY_STEP, Math.ceil(size / CAPACITY_STEP) * CAPACITY_STEP);
    const fit = this.smallestIdle(cap, 2 * cap);
    const ab = fit === undefined ? undefined : this.free.get(fit)?.pop();
    if (ab) {
      this.idle.delete(ab);
      this.freeBytes -= ab.byteLength;
      return Buffer.from(ab, 0, size);
    }
    const fresh = new SharedArrayBuffer(cap);
    this.own.add(fresh);
    return Buffer.from(fresh, 0, size);
  }

  /** The cache let go of `buf`: reused as soon as nobody pins it. */
  retire(buf: Uint8Array): void {
    const ab = this.owned(buf);
    if (!ab) return;
    if (this.pins.has(ab)) this.retired.add(ab);
    else this.recycle(ab);
  }

  /** The cache holds `buf` again: a retire still waiting on pins is called off. */
  reinstate(buf: Uint8Array): void {
    const ab = this.owned(buf);
    if (ab) this.retired.delete(ab);
  }

  pin(buf: Uint8Array): void {
    const ab = this.owned(buf);
    if (ab) this.pins.set(ab, (this.pins.get(ab) ?? 0) + 1);
  }

  unpin(buf: Uint8Array): void {
    const ab = this.owned(buf);
    if (!ab) return;
    const n = (this.pins.get(ab) ?? 1) - 1;
    if (n > 0) return void this.pins.set(ab, n);
    this.pins.delete(ab);
    if (this.retired.delete(ab)) this.recycle(ab);
  }

  /**
   * Pinned until the next turn of the event loop: a buffer handed to awaiting readers stays
   * intact until their continuations (microtasks, all run before the next turn) copied from it.
   */
  pinForTurn(buf: Uint8Array): void {
    if (!this.owned(buf)) return;
    this.pin(buf);
    onNextTurn(() => this.unpin(buf));
  }

  /** Bytes of buffers waiting to be reused. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  private owned(buf: Uint8Array): SharedArrayBuffer | undefined {
    const ab = buf.buffer;
    return ab instanceof SharedArrayBuffer && this.own.has(ab) ? ab : undefined;
  }

  /**
   * Kept for reuse within the cap; when full, smaller idle buffers make room for a bigger one,
   * which serves more requests.
   */
  private recycle(ab: SharedArrayBuffer): void {
    if (this.idle.has(ab) || ab.byteLength > this.maxFreeBytes) return;
    while (this.freeBytes + ab.byteLength > this.maxFreeBytes) {
      const smallest = this.smallestIdle();
      if (smallest === undefined || smallest >= ab.byteLength) return;
      const dropped = this.free.get(smallest)?.pop() as SharedArrayBuffer;
      this.idle.delete(dropped);
      this.freeBytes -= smallest;
    }
    this.idle.add(ab);
    const list = this.free.get(ab.byteLength);
    if (list) list.push(ab);
    else this.free.set(ab.byteLength, [ab]);
    this.freeBytes += ab.byteLength;
  }

  /** The smallest capacity in [min, max] with an idle buffer. */
  private smallestIdle(min = 0, max = Infinity): number | undefined {
    let best: number | undefined;
    for (const [c, list] of this.free) if (list.length > 0 && c >= min && c <= max && (best === undefined || c < best)) best = c;
    return best;
  }
}
