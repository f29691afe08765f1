/** Overlay whiteout names in a layer tar (OCI image spec, "Whiteouts"). */

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export type NameKind = { kind: 'plain' } | { kind: 'opaque' } | { kind: 'whiteout'; target: string };

export function classifyName(base: string): NameKind {
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_PREFIX)) return { kind: 'whiteout', target: base.slice(WHITEOUT_PREFIX.length) };
  return { kind: 'plain' };
}
