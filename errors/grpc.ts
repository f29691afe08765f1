/**
 * The one mapping between gRPC status codes and SociError kinds, used by the containerd
 * client (codes -> kinds) and by the snapshotter's gRPC server (kinds -> codes).
 */
import { status, type StatusObject } from '@grpc/grpc-js';
import { SociError, type ErrorKind } from './errors.js';

const KIND_BY_CODE: ReadonlyMap<number, ErrorKind> = new Map<number, ErrorKind>([
  [status.NOT_FOUND, 'not-found'],
  [status.ALREADY_EXISTS, 'already-exists'],
  [status.FAILED_PRECONDITION, 'failed-precondition'],
  [status.INVALID_ARGUMENT, 'invalid-argument'],
  // containerd answers a write at a wrong offset with OutOfRange: the caller's argument is bad.
  [status.OUT_OF_RANGE, 'invalid-argument'],
  [status.UNAVAILABLE, 'unavailable'],
  // A deadline or a cancelled call means the peer was not there in time; a retry may work.
  [status.DEADLINE_EXCEEDED, 'unavailable'],
]);

const CODE_BY_KIND: Readonly<Record<ErrorKind, status>> = {
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  'invalid-argument': status.INVALID_ARGUMENT,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

interface GrpcLikeError {
  code: number;
  details?: string;
  message?: string;
}

function isGrpcLikeError(err: unknown): err is GrpcLikeError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

export function kindForGrpcCode(code: number): ErrorKind {
  return KIND_BY_CODE.get(code) ?? 'internal';
}

export function grpcCodeForKind(kind: ErrorKind): status {
  return CODE_BY_KIND[kind];
}

/**
 * A SociError for an error thrown by a gRPC call. `context` names the call and the object,
 * e.g. `containerd Images.Get "docker.io/library/x:1"`; it prefixes the peer's message.
 */
export function fromGrpcError(err: unknown, context: string): SociError {
  if (err instanceof SociError) return err;
  if (isGrpcLikeError(err)) {
    const detail = err.details || err.message || `gRPC status ${err.code}`;
    return new SociError(kindForGrpcCode(err.code), `${context}: ${detail}`, { cause: err });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new SociError('internal', `${context}: ${detail}`, { cause: err });
}

/** The status a gRPC server handler answers with for a thrown value. */
export function toGrpcStatus(err: unknown): Pick<StatusObject, 'code' | 'details'> {
  if (err instanceof SociError) return { code: grpcCodeForKind(err.kind), details: err.message };
  const details = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details };
}
