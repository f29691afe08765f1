import { SociError, unavailable } from '../../errors/errors.js';

/**
 * Retries with exponential backoff and jitter for connection failures, 429 and 5xx. Other
 * statuses are answers, not faults, and are never retried.
 */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  max: number;
  baseMs: number;
  /** Cap of one delay, Retry-After included. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { max: 4, baseMs: 200, maxMs: 10_000 };

/** A failed attempt worth repeating; `retryAfterMs` comes from the server's Retry-After. */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_RETRY', 'ERR_STREAM_PREMATURE_CLOSE',
]);

function errorCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}

/** Connection-level failures (refused, reset, timeouts, cut bodies) — not HTTP answers. */
export function isNetworkError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; depth++) {
    const code = errorCode(cur);
    if (code && NETWORK_CODES.has(code)) return true;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return false;
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/** Retry-After as delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  if (!/[a-z]/i.test(s)) return undefined;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Delay before retry number `attempt` (1-based): full jitter over [d/2, d], d = base·2^(attempt-1), capped. */
export function backoffDelay(attempt: number, policy: RetryPolicy, rand: () => number = Math.random): number {
  const d = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(d / 2 + (rand() * d) / 2);
}

export function delayFor(err: RetryableError | Error, attempt: number, policy: RetryPolicy): number {
  const ra = err instanceof RetryableError ? err.retryAfterMs : undefined;
  if (ra !== undefined) return Math.min(policy.maxMs, ra);
  return backoffDelay(attempt, policy);
}

export interface RetryContext {
  what: string;
  policy: RetryPolicy;
  /** Epoch ms after which no new attempt starts. */
  deadline?: number;
  onRetry?(info: { attempt: number; delayMs: number; error: string }): void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function shortCause(e: unknown): string {
  if (e instanceof Error) return `${errorCode(e) ? errorCode(e) + ' ' : ''}${e.message}`.slice(0, 200);
  return String(e);
}

/** Runs `attempt` until it succeeds, fails with a non-retryable error, or retries run out. */
export async function withRetries<T>(ctx: RetryContext, attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      const retryable = e instanceof RetryableError || (!(e instanceof SociError) && isNetworkError(e));
      if (!retryable) throw e;
      const delayMs = delayFor(e as Error, n + 1, ctx.policy);
      const outOfTime = ctx.deadline !== undefined && Date.now() + delayMs >= ctx.deadline;
      if (n >= ctx.policy.max || outOfTime) {
        const why = outOfTime && n < ctx.policy.max ? 'out of time' : `${n + 1} attempts`;
        throw unavailable(`${ctx.what}: ${shortCause(e)} (gave up after ${why})`, e);
      }
      ctx.onRetry?.({ attempt: n + 1, delayMs, error: shortCause(e) });
      await sleep(delayMs);
    }
  }
}
