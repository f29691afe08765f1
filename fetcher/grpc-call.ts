/**
 * Promise and async-iterator wrappers over grpc-js's callback/stream client methods, with
 * errors turned into SociErrors that name the call.
 */
import * as grpc from '@grpc/grpc-js';
import { fromGrpcError } from '../errors/grpc.js';

type UnaryMethod = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;
type ServerStreamMethod = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
type DuplexMethod = (md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>;

function method<T>(client: grpc.Client, name: string): T {
  const fn = (client as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new TypeError(`gRPC client has no method ${name}`);
  return (fn as (...args: unknown[]) => unknown).bind(client) as T;
}

export function unaryCall<Res>(
  client: grpc.Client,
  name: string,
  req: object,
  md: grpc.Metadata,
  context: string,
  opts: grpc.CallOptions = {},
): Promise<Res> {
  const call = method<UnaryMethod>(client, name);
  return new Promise<Res>((resolve, reject) => {
    call(req, md, opts, (err, res) => {
      if (err) reject(fromGrpcError(err, context));
      else resolve(res as Res);
    });
  });
}

export async function* serverStreamCall<Res>(
  client: grpc.Client,
  name: string,
  req: object,
  md: grpc.Metadata,
  context: string,
  opts: grpc.CallOptions = {},
): AsyncGenerator<Res> {
  const stream = method<ServerStreamMethod>(client, name)(req, md, opts);
  try {
    for await (const msg of stream) yield msg as Res;
  } catch (err) {
    throw fromGrpcError(err, context);
  } finally {
    // Stops the server sending when the consumer leaves the loop early.
    stream.cancel();
  }
}

export function duplexCall<Req, Res>(
  client: grpc.Client,
  name: string,
  md: grpc.Metadata,
  opts: grpc.CallOptions = {},
): grpc.ClientDuplexStream<Req, Res> {
  return method<DuplexMethod>(client, name)(md, opts) as grpc.ClientDuplexStream<Req, Res>;
}
