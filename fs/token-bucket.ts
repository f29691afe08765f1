/** A byte-rate cap: takers pay after, so a span larger than one second's budget still passes, and the average rate holds. */
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  private tokens: number;
  private last: number;

  /** rate in bytes per second; 0 = unlimited. */
  constructor(private readonly rate: number, private readonly now: () => number = Date.now) {
    this.tokens = rate;
    this.last = now();
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return;
    this.refill();
    while (this.tokens < 0) {
      await sleep(Math.ceil((-this.tokens / this.rate) * 1000), undefined, { signal });
      this.refill();
    }
    this.tokens -= bytes;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }
}
