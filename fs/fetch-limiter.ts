/**
 * Caps span fetches in flight across all layers (config blob.max_concurrent_fetches).
 * Demand fetches (a reader is waiting) always start before queued background ones, and
 * background fetches never take the last slot, so a demand read never queues behind
 * background work alone.
 */
import { unavailable } from '../errors/errors.js';

export type FetchPriority = 'demand' | 'background';

export interface ScheduledFetch<T> {
  promise: Promise<T>;
  /** A demand reader joined this background fetch: move it to the demand queue if still waiting. */
  promote(): void;
}

interface Waiter {
  priority: FetchPriority;
  start(): void;
}

export class FetchLimiter {
  private active = 0;
  private activeBackground = 0;
  private readonly demand: Waiter[] = [];
  private readonly background: Waiter[] = [];
  private readonly backgroundMax: number;

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw unavailable(`fetch limiter: max ${max} is not a positive integer`);
    this.backgroundMax = max > 1 ? max - 1 : 1;
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.demand.length + this.background.length;
  }

  run<T>(priority: FetchPriority, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.schedule(priority, fn, signal).promise;
  }

  schedule<T>(priority: FetchPriority, fn: () => Promise<T>, signal?: AbortSignal): ScheduledFetch<T> {
    let waiter: Waiter | undefined;
    const promise = new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        if (waiter && this.dequeue(waiter)) reject(signal?.reason);
      };
      waiter = {
        priority,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.acquire(waiter!.priority);
          fn().then(resolve, reject).finally(() => this.release(waiter!.priority));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queueFor(priority).push(waiter);
      this.pump();
    });
    return {
      promise,
      promote: () => {
        if (!waiter || waiter.priority === 'demand' || !this.dequeue(waiter)) return;
        waiter.priority = 'demand';
        this.demand.push(waiter);
        this.pump();
      },
    };
  }

  private queueFor(p: FetchPriority): Waiter[] {
    return p === 'demand' ? this.demand : this.background;
  }

  private dequeue(w: Waiter): boolean {
    const q = this.queueFor(w.priority);
    const i = q.indexOf(w);
    if (i < 0) return false;
    q.splice(i, 1);
    return true;
  }

  private acquire(p: FetchPriority): void {
    this.active++;
    if (p === 'background') this.activeBackground++;
  }

  private release(p: FetchPriority): void {
    this.active--;
    if (p === 'background') this.activeBackground--;
    this.pump();
  }

  private pump(): void {
    while (this.active < this.max) {
      const next = this.demand.shift() ?? (this.activeBackground < this.backgroundMax ? this.background.shift() : undefined);
      if (!next) return;
      next.start();
    }
  }
}
