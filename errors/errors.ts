/**
 * The project's one error vocabulary. Every failure that crosses a module boundary is a
 * SociError of one of these kinds; the gRPC status code and the errno for each kind are
 * chosen in exactly one place (errors/grpc.ts, errors/errno.ts).
 */
export type ErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'invalid-argument'
  | 'failed-precondition'
  | 'unavailable'
  | 'internal';

export class SociError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'SociError';
  }
}

export const notFound = (msg: string, cause?: unknown): SociError => new SociError('not-found', msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown): SociError => new SociError('already-exists', msg, { cause });
export const invalidArgument = (msg: string, cause?: unknown): SociError => new SociError('invalid-argument', msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown): SociError =>
  new SociError('failed-precondition', msg, { cause });
export const unavailable = (msg: string, cause?: unknown): SociError => new SociError('unavailable', msg, { cause });
export const internal = (msg: string, cause?: unknown): SociError => new SociError('internal', msg, { cause });

export function isKind(err: unknown, kind: ErrorKind): boolean {
  return err instanceof SociError && err.kind === kind;
}

/** A one-line description of any thrown value, for CLI output and logs. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.replace(/\s*\n\s*/g, '; ');
  return String(err);
}
