/**
 * Loads the project's .proto interface definitions (proto/) into grpc-js service constructors.
 * google/protobuf/{empty,timestamp,field_mask,any}.proto are not files in proto/: protobufjs
 * resolves any import under "google/protobuf/" to its bundled copies.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { internal } from '../errors/errors.js';

const CONTAINERD_API = 'github.com/containerd/containerd/api';

export const PROTO_FILES: readonly string[] = [
  `${CONTAINERD_API}/types/mount.proto`,
  `${CONTAINERD_API}/types/descriptor.proto`,
  `${CONTAINERD_API}/services/content/v1/content.proto`,
  `${CONTAINERD_API}/services/images/v1/images.proto`,
  `${CONTAINERD_API}/services/leases/v1/leases.proto`,
  `${CONTAINERD_API}/services/snapshots/v1/snapshots.proto`,
  `${CONTAINERD_API}/services/diff/v1/diff.proto`,
  'cri/api.proto',
];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  // int64 values here (blob sizes, offsets, inode counts) stay far below 2^53.
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** proto/ at the project root, from the source tree (fetcher/) or the build (dist/fetcher/). */
export function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'proto'), join(here, '..', '..', 'proto')];
  const found = candidates.find((dir) => existsSync(join(dir, CONTAINERD_API)));
  if (!found) throw internal(`proto directory not found next to ${here} (looked in ${candidates.join(', ')})`);
  return found;
}

/** A fresh grpc object tree for all project protos; the caller keeps it. */
export function loadProtos(): grpc.GrpcObject {
  const dir = protoDir();
  const definition = protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [dir] });
  return grpc.loadPackageDefinition(definition);
}

/** The service constructor at a dotted name such as `containerd.services.content.v1.Content`. */
export function serviceConstructor(root: grpc.GrpcObject, fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of fullName.split('.')) {
    node = typeof node === 'object' || typeof node === 'function' ? (node as Record<string, unknown>)[part] : undefined;
  }
  if (typeof node !== 'function' || !('service' in node)) throw internal(`gRPC service ${fullName} not found in the loaded protos`);
  return node as grpc.ServiceClientConstructor;
}
