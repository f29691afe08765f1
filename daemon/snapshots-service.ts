/**
 * containerd.services.snapshots.v1.Snapshots on grpc-js, over a Snapshotter. Every handler is
 * async and answers every failure with a gRPC status (errors/grpc.ts toGrpcStatus), so nothing
 * a client sends can take the daemon down.
 */
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, internal } from '../errors/errors.js';
import { toGrpcStatus } from '../errors/grpc.js';
import { loadProtos, serviceConstructor } from '../fetcher/proto-loader.js';
import type { Mount } from './mounts.js';
import type { Scope, SnapshotInfo } from './snapshot-store.js';
import type { Snapshotter } from './snapshotter.js';
import type { Labels } from './labels.js';
import { listScopes, scopeFor } from './scope.js';

export const SNAPSHOTS_SERVICE = 'containerd.services.snapshots.v1.Snapshots';
export const NAMESPACE_HEADER = 'containerd-namespace';
/** List answers in messages of at most this many infos or about this many bytes of labels. */
const LIST_CHUNK_COUNT = 100;
const LIST_CHUNK_BYTES = 1 << 20;
// containerd's namespace identifiers (its identifiers package).
const NAMESPACE_RE = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

export interface ServiceLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface WireTimestamp { seconds: number; nanos: number }

interface WireInfo {
  name: string;
  parent: string;
  kind: string;
  created_at: WireTimestamp | null;
  updated_at: WireTimestamp | null;
  labels: Labels;
}

interface KeyRequest { snapshotter: string; key: string }
interface CreateRequest extends KeyRequest { parent: string; labels: Labels }
interface CommitRequest extends KeyRequest { name: string; labels: Labels }
interface UpdateRequest { snapshotter: string; info: WireInfo | null; update_mask: { paths: string[] } | null }
interface ListRequest { snapshotter: string; filters: string[] }

function timestamp(d: Date): WireTimestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (((ms % 1000) + 1000) % 1000) * 1e6 };
}

function toWireInfo(info: SnapshotInfo): WireInfo {
  return {
    name: info.name, parent: info.parent, kind: info.kind, labels: info.labels,
    created_at: timestamp(info.createdAt), updated_at: timestamp(info.updatedAt),
  };
}

function toWireMounts(mounts: Mount[]): { mounts: Array<Mount & { target: string }> } {
  return { mounts: mounts.map((m) => ({ ...m, target: '' })) };
}

/** The call's namespace; '' when the caller sent none (containerd's gRPC-forwarded calls; its CRI plugin sends one: see scope.ts). */
export function namespaceOf(md: grpc.Metadata): Scope {
  const v = md.get(NAMESPACE_HEADER)[0];
  const ns = typeof v === 'string' ? v : v?.toString('utf8');
  if (ns === undefined || ns === '') return '';
  if (ns.length > 76 || !NAMESPACE_RE.test(ns)) throw invalidArgument(`namespace ${JSON.stringify(ns)} is not a valid containerd namespace`);
  return ns;
}

function labelsOf(v: unknown): Labels {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object') throw invalidArgument('labels must be a map of strings');
  return v as Labels;
}

type Handler<Req, Res> = (req: Req, ns: Scope) => Promise<Res>;

/** DaemonMetrics provides this; kept structural so the service does not depend on prom-client. */
export interface GrpcRequestMetrics {
  grpcRequest(method: string, code: string, seconds: number): void;
}

export class SnapshotsService {
  constructor(
    private readonly sn: Snapshotter,
    private readonly log: ServiceLogger,
    private readonly metrics?: GrpcRequestMetrics,
  ) {}

  private observe(method: string, started: number, code: grpc.status): void {
    this.metrics?.grpcRequest(method, grpc.status[code], (performance.now() - started) / 1000);
  }

  private fail(method: string, req: unknown, err: unknown): Partial<grpc.StatusObject> {
    const st = toGrpcStatus(err);
    const line = { method, code: grpc.status[st.code], details: st.details, key: (req as Partial<KeyRequest>)?.key };
    if (st.code === grpc.status.INTERNAL) this.log.warn({ ...line, err: String(err) }, 'snapshots request failed');
    else this.log.debug(line, 'snapshots request refused');
    return st;
  }

  private unary<Req, Res>(method: string, fn: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const started = performance.now();
      const run = async (): Promise<Res> => {
        const ns = namespaceOf(call.metadata);
        this.log.debug({ method, ns, key: (call.request as Partial<KeyRequest>)?.key }, 'snapshots request');
        return fn(call.request, ns);
      };
      run().then(
        (res) => {
          this.observe(method, started, grpc.status.OK);
          callback(null, res);
        },
        (err: unknown) => {
          const st = this.fail(method, call.request, err);
          this.observe(method, started, st.code ?? grpc.status.UNKNOWN);
          callback(st);
        },
      );
    };
  }

  private list(): grpc.handleServerStreamingCall<ListRequest, { info: WireInfo[] }> {
    return (call) => {
      const started = performance.now();
      const run = async (): Promise<void> => {
        const ns = namespaceOf(call.metadata);
        const filters = call.request.filters ?? [];
        const infos = listScopes(ns, filters).flatMap((scope) => this.sn.list(scope, filters)).map(toWireInfo);
        this.log.debug({ method: 'List', ns, filters: call.request.filters, found: infos.length }, 'snapshots request');
        let chunk: WireInfo[] = [];
        let bytes = 0;
        for (const info of infos) {
          chunk.push(info);
          bytes += JSON.stringify(info.labels).length + info.name.length + info.parent.length;
          if (chunk.length >= LIST_CHUNK_COUNT || bytes >= LIST_CHUNK_BYTES) {
            if (call.cancelled) return;
            call.write({ info: chunk });
            chunk = [];
            bytes = 0;
          }
        }
        if (chunk.length > 0 && !call.cancelled) call.write({ info: chunk });
      };
      run().then(
        () => {
          this.observe('List', started, call.cancelled ? grpc.status.CANCELLED : grpc.status.OK);
          call.end();
        },
        (err: unknown) => {
          const st = this.fail('List', call.request, err);
          this.observe('List', started, st.code ?? grpc.status.UNKNOWN);
          call.emit('error', st);
        },
      );
    };
  }

  /** The handlers in the shape grpc.Server.addService wants. */
  implementation(): grpc.UntypedServiceImplementation {
    const sn = this.sn;
    const at = (ns: Scope, key: string): Scope => scopeFor(ns, key, (scope, k) => sn.exists(scope, k));
    return {
      Prepare: this.unary<CreateRequest, object>('Prepare', async (r, ns) =>
        toWireMounts(await sn.prepare(at(ns, r.key), r.key, r.parent, labelsOf(r.labels)))),
      View: this.unary<CreateRequest, object>('View', async (r, ns) =>
        toWireMounts(await sn.view(at(ns, r.key), r.key, r.parent, labelsOf(r.labels)))),
      Mounts: this.unary<KeyRequest, object>('Mounts', async (r, ns) => toWireMounts(sn.mounts(at(ns, r.key), r.key))),
      Commit: this.unary<CommitRequest, object>('Commit', async (r, ns) => {
        await sn.commit(at(ns, r.key), r.name, r.key, labelsOf(r.labels));
        return {};
      }),
      Remove: this.unary<KeyRequest, object>('Remove', async (r, ns) => {
        await sn.remove(at(ns, r.key), r.key);
        return {};
      }),
      Stat: this.unary<KeyRequest, object>('Stat', async (r, ns) => ({ info: toWireInfo(sn.stat(at(ns, r.key), r.key)) })),
      Update: this.unary<UpdateRequest, object>('Update', async (r, ns) => {
        if (!r.info) throw invalidArgument('Update: info is required');
        const info = sn.update(at(ns, r.info.name), r.info.name, labelsOf(r.info.labels), r.update_mask?.paths ?? []);
        return { info: toWireInfo(info) };
      }),
      List: this.list(),
      Usage: this.unary<KeyRequest, object>('Usage', async (r, ns) => sn.usage(at(ns, r.key), r.key)),
      Cleanup: this.unary<{ snapshotter: string }, object>('Cleanup', async () => {
        await sn.cleanup();
        return {};
      }),
    };
  }
}

export function snapshotsServiceDefinition(): grpc.ServiceDefinition {
  const ctor = serviceConstructor(loadProtos(), SNAPSHOTS_SERVICE);
  if (!ctor.service) throw internal(`${SNAPSHOTS_SERVICE}: no service definition in the loaded protos`);
  return ctor.service;
}
