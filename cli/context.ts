import type { Command } from 'commander';
import { ContainerdClient } from '../fetcher/containerd-client.js';
import { ContainerdImageSource } from '../fetcher/containerd-source.js';
import type { ImageSource } from '../fetcher/image-source.js';
import { OciLayoutSource } from '../fetcher/oci-layout.js';
import { LocalStore } from '../store/local-store.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

export interface GlobalOptions {
  root: string;
  address: string;
  namespace: string;
  config: Config;
}

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
export const DEFAULT_NAMESPACE = 'default';

interface RawGlobals {
  root?: string;
  address?: string;
  namespace?: string;
  config?: string;
}

/** Global flags, with the root taken from --root, else the config file's root_path. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<RawGlobals>();
  const config = loadConfig(o.config, { overrides: { root_path: o.root } });
  return {
    root: config.root_path,
    address: o.address ?? DEFAULT_CONTAINERD_ADDRESS,
    namespace: o.namespace ?? DEFAULT_NAMESPACE,
    config,
  };
}

/** Opens the local store for the duration of fn and always closes it. */
export async function withStore<T>(g: GlobalOptions, fn: (store: LocalStore) => Promise<T>): Promise<T> {
  const store = new LocalStore(g.root);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

export function containerdClient(g: GlobalOptions): ContainerdClient {
  return new ContainerdClient({ address: g.address, namespace: g.namespace });
}

/** The image source a command reads from: an OCI layout when given, else containerd. */
export async function openSource(g: GlobalOptions, ociLayout: string | undefined): Promise<ImageSource> {
  if (ociLayout) return OciLayoutSource.open(ociLayout);
  return new ContainerdImageSource(containerdClient(g), `containerd ${g.namespace}@${g.address}`);
}

export async function withSource<T>(g: GlobalOptions, ociLayout: string | undefined, fn: (s: ImageSource) => Promise<T>): Promise<T> {
  const source = await openSource(g, ociLayout);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}
