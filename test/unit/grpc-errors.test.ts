import t from 'tap';
import { status } from '@grpc/grpc-js';
import { fromGrpcError, toGrpcStatus, kindForGrpcCode, grpcCodeForKind } from '../../errors/grpc.js';
import { SociError, type ErrorKind } from '../../errors/errors.js';

t.test('gRPC code -> kind', async (t) => {
  const cases: Array<[number, ErrorKind]> = [
    [status.NOT_FOUND, 'not-found'], [status.ALREADY_EXISTS, 'already-exists'],
    [status.FAILED_PRECONDITION, 'failed-precondition'], [status.INVALID_ARGUMENT, 'invalid-argument'],
    [status.UNAVAILABLE, 'unavailable'], [status.OUT_OF_RANGE, 'invalid-argument'],
    [status.DEADLINE_EXCEEDED, 'unavailable'], [status.UNKNOWN, 'internal'], [status.INTERNAL, 'internal'],
  ];
  for (const [code, kind] of cases) t.equal(kindForGrpcCode(code), kind, `code ${code}`);
});

t.test('fromGrpcError names the call and keeps the cause', async (t) => {
  const grpcErr = Object.assign(new Error('5 NOT_FOUND: image "x": not found'), { code: status.NOT_FOUND, details: 'image "x": not found' });
  const e = fromGrpcError(grpcErr, 'containerd Images.Get "x"');
  t.ok(e instanceof SociError);
  t.equal(e.kind, 'not-found');
  t.equal(e.message, 'containerd Images.Get "x": image "x": not found');
  t.equal(e.cause, grpcErr);
  const own = new SociError('invalid-argument', 'bad');
  t.equal(fromGrpcError(own, 'ctx'), own, 'SociError passes through');
  const plain = fromGrpcError(new TypeError('boom'), 'ctx');
  t.equal(plain.kind, 'internal');
  t.equal(plain.message, 'ctx: boom');
});

t.test('kind -> gRPC status, round trip', async (t) => {
  const kinds: ErrorKind[] = ['not-found', 'already-exists', 'invalid-argument', 'failed-precondition', 'unavailable', 'internal'];
  for (const kind of kinds) {
    const st = toGrpcStatus(new SociError(kind, `msg ${kind}`));
    t.equal(st.details, `msg ${kind}`);
    t.equal(st.code, grpcCodeForKind(kind));
    t.equal(kindForGrpcCode(st.code), kind, `${kind} survives a round trip`);
  }
  t.same(toGrpcStatus(new Error('x')), { code: status.INTERNAL, details: 'x' });
  t.equal(grpcCodeForKind('already-exists'), 6);
  t.equal(grpcCodeForKind('failed-precondition'), 9);
});
