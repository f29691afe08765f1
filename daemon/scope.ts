/**
 * Which key space of the store a request lands in. A client that sends `containerd-namespace`
 * gets its own (so containerd's garbage collector, which owns the space '', never removes its
 * snapshots). But containerd's in-process plugins (the CRI plugin) send their namespace too,
 * while using containerd's backend keys: `<ns>/<n>/<key>` for snapshots containerd made, bare
 * names (chain IDs) for remote snapshots this daemon committed. Those calls belong in '', where
 * containerd's gRPC-forwarded calls and its garbage collection (no header) find the same keys.
 */
import type { Scope } from './snapshot-store.js';
import { TARGET_SNAPSHOT_LABEL } from './snapshotter.js';

/** `<ns>/<digits>/...`: a key containerd's metadata store made for namespace `ns`. */
export function isContainerdBackendKey(ns: Scope, key: string): boolean {
  return key.startsWith(`${ns}/`) && /^\d+\//.test(key.slice(ns.length + 1));
}

/** The space for a request on `key`: '' for containerd's keys and for names only '' knows. */
export function scopeFor(ns: Scope, key: string, exists: (scope: Scope, key: string) => boolean): Scope {
  if (ns === '' || isContainerdBackendKey(ns, key)) return '';
  if (!exists(ns, key) && exists('', key)) return '';
  return ns;
}

/**
 * The spaces a List searches. containerd finds the snapshot a remote Prepare committed by its
 * target label, with the caller's header still set: that lookup also searches ''.
 */
export function listScopes(ns: Scope, filters: readonly string[]): Scope[] {
  if (ns === '') return [''];
  return filters.some((f) => f.includes(TARGET_SNAPSHOT_LABEL)) ? [ns, ''] : [ns];
}
