/**
 * What one more span costs in a demand GET on this daemon's link, against what a miss costs,
 * learnt from the span fetches themselves:
 *  - the link's rate: how fast GET bodies arrive after their first piece (the first piece can
 *    come in a burst, together with the headers);
 *  - a miss's fixed cost: the time from issuing a demand GET until its first span is served,
 *    less the time its body took to arrive (the registry's time to first byte, queueing, the
 *    inflate and the digest check).
 * Both are moving averages, so the estimate follows a link whose speed changes.
 */
import type { BodyAlloc } from '../fetcher/registry/http.js';

/** Weight of the newest sample in the averages. */
const WEIGHT = 0.2;

/** A body's arrival: all of it from the headers, and the part after its first piece. */
export interface BodyTiming {
  bytes: number;
  ms: number;
  tailBytes: number;
  tailMs: number;
}

/** What the read path asks and tells about the link (LinkEstimate; tests may fix the answer). */
export interface LinkCostModel {
  noteBody(t: BodyTiming): void;
  noteMiss(ms: number, bodyMs: number): void;
  worthFetching(bytes: number, chance: number): boolean;
}

export class LinkEstimate implements LinkCostModel {
  /** Averages of body tails: their ratio is the rate (bytes and time, so small bodies weigh little). */
  private tail: { bytes: number; ms: number } | undefined;
  private fixedMs: number | undefined;

  noteBody(t: BodyTiming): void {
    if (!(t.tailBytes >= 0) || !(t.tailMs >= 0)) return;
    this.tail = { bytes: average(this.tail?.bytes, t.tailBytes), ms: average(this.tail?.ms, t.tailMs) };
  }

  /** A demand GET was issued `ms` before its first span was served; `bodyMs` of that went to its body. */
  noteMiss(ms: number, bodyMs: number): void {
    if (ms >= 0 && bodyMs >= 0) this.fixedMs = average(this.fixedMs, Math.max(0, ms - bodyMs));
  }

  /**
   * Whether `bytes` more in a demand GET are worth their transfer time when they will be read
   * later with probability `chance`: read, they save a miss's fixed cost; unread, their
   * transfer was wasted. Nothing measured yet: no.
   */
  worthFetching(bytes: number, chance: number): boolean {
    if (this.tail === undefined || this.fixedMs === undefined) return false;
    const transferMs = this.tail.bytes > 0 ? (bytes * this.tail.ms) / this.tail.bytes : 0;
    return chance * this.fixedMs > (1 - chance) * transferMs;
  }

  /** Bytes per second of recent GET bodies after their first piece (+Inf when they came whole). */
  get bodyRate(): number | undefined {
    if (this.tail === undefined) return undefined;
    return this.tail.ms > 0 ? (this.tail.bytes / this.tail.ms) * 1000 : Infinity;
  }

  /** Seconds of a recent demand miss that do not depend on its size, once measured. */
  get missFixedSeconds(): number | undefined {
    return this.fixedMs === undefined ? undefined : this.fixedMs / 1000;
  }
}

/**
 * One estimate per registry (the domain of an image reference): a daemon that pulls from a
 * mirror next door and from a registry across the world must not mix the two links.
 */
export class LinkEstimates {
  private readonly byRegistry = new Map<string, LinkEstimate>();

  for(registry: string): LinkEstimate {
    let link = this.byRegistry.get(registry);
    if (!link) this.byRegistry.set(registry, (link = new LinkEstimate()));
    return link;
  }

  entries(): IterableIterator<[string, LinkEstimate]> {
    return this.byRegistry.entries();
  }
}

function average(old: number | undefined, sample: number): number {
  return old === undefined ? sample : old + WEIGHT * (sample - old);
}

/**
 * `alloc`, timing the body it is asked for: `done` once the last byte is in. The clock starts at
 * the allocation (the response's headers); a body begun again (a retry) restarts it.
 */
export function timedBody(alloc: BodyAlloc, done: (t: BodyTiming) => void): BodyAlloc {
  let started = 0;
  let size = -1;
  let first: { at: number; bytes: number } | undefined;
  return Object.assign(
    (n: number): Buffer => {
      started = performance.now();
      size = n;
      first = undefined;
      return alloc(n);
    },
    {
      received: (bytes: number): void => {
        alloc.received?.(bytes);
        const now = performance.now();
        first ??= { at: now, bytes };
        if (bytes === size) done({ bytes: size, ms: now - started, tailBytes: size - first.bytes, tailMs: now - first.at });
      },
    },
  );
}
