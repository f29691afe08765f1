/**
 * Shapes of containerd API messages as proto-loader decodes them (snake_case, int64 as number,
 * enums as strings) and the camelCase shapes the client hands out, with converters between them.
 */

export interface WireTimestamp {
  seconds: number | string;
  nanos: number;
}

export interface WireDescriptor {
  media_type: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export interface WireMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface WireImage {
  name: string;
  labels: Record<string, string>;
  target: WireDescriptor | null;
  created_at: WireTimestamp | null;
  updated_at: WireTimestamp | null;
}

export interface WireContentInfo {
  digest: string;
  size: number;
  created_at: WireTimestamp | null;
  updated_at: WireTimestamp | null;
  labels: Record<string, string>;
}

export type SnapshotKind = 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';

export interface WireSnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  created_at: WireTimestamp | null;
  updated_at: WireTimestamp | null;
  labels: Record<string, string>;
}

export interface WireLease {
  id: string;
  created_at: WireTimestamp | null;
  labels: Record<string, string>;
}

/** An OCI descriptor as it appears in manifests and indexes. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface ImageRecord {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt?: Date;
  updatedAt?: Date;
}

export interface ContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
  createdAt?: Date;
  updatedAt?: Date;
}

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  createdAt?: Date;
  updatedAt?: Date;
}

export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt?: Date;
}

export function fromTimestamp(ts: WireTimestamp | null | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}

export function toTimestamp(date: Date): WireTimestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function fromWireDescriptor(d: WireDescriptor): Descriptor {
  const out: Descriptor = { mediaType: d.media_type, digest: d.digest, size: Number(d.size) };
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = { ...d.annotations };
  return out;
}

export function toWireDescriptor(d: Descriptor): WireDescriptor {
  return { media_type: d.mediaType, digest: d.digest, size: d.size, annotations: { ...(d.annotations ?? {}) } };
}

export function fromWireMount(m: WireMount): Mount {
  const out: Mount = { type: m.type, source: m.source, options: [...m.options] };
  if (m.target) out.target = m.target;
  return out;
}

export function toWireMount(m: Mount): WireMount {
  return { type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] };
}

export function fromWireImage(img: WireImage): ImageRecord {
  const target = img.target ?? { media_type: '', digest: '', size: 0, annotations: {} };
  return {
    name: img.name,
    labels: { ...img.labels },
    target: fromWireDescriptor(target),
    createdAt: fromTimestamp(img.created_at),
    updatedAt: fromTimestamp(img.updated_at),
  };
}

export function fromWireContentInfo(info: WireContentInfo): ContentInfo {
  return {
    digest: info.digest,
    size: Number(info.size),
    labels: { ...info.labels },
    createdAt: fromTimestamp(info.created_at),
    updatedAt: fromTimestamp(info.updated_at),
  };
}

export function fromWireSnapshotInfo(info: WireSnapshotInfo): SnapshotInfo {
  return {
    name: info.name,
    parent: info.parent,
    kind: info.kind,
    labels: { ...info.labels },
    createdAt: fromTimestamp(info.created_at),
    updatedAt: fromTimestamp(info.updated_at),
  };
}

export function fromWireLease(lease: WireLease): Lease {
  return { id: lease.id, labels: { ...lease.labels }, createdAt: fromTimestamp(lease.created_at) };
}
