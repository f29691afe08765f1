import type { Command } from 'commander';
import { ContainerdClient } from '../fetcher/containerd-client.js';
import { ContainerdImageSource, containerdNameCandidates } from '../fetcher/containerd-source.js';
import { RegistryClient } from '../fetcher/registry/registry-client.js';
import { RegistryImageSource } from '../fetcher/registry/registry-source.js';
import { registryOptionsFrom } from '../fetcher/registry/client-from-config.js';
import { isKind } from '../errors/errors.js';
import { existsSync } from 'node:fs';
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

export interface SourceFlags {
  ociLayout?: string;
  user?: string;
  plainHttp?: boolean;
}

async function containerdHas(client: ContainerdClient, image: string): Promise<boolean> {
  for (const name of containerdNameCandidates(image)) {
    try {
      await client.getImage(name);
      return true;
    } catch (e) {
      if (!isKind(e, 'not-found')) throw e;
    }
  }
  return false;
}

/**
 * The image source a command reads from: an OCI layout when given; else containerd when it
 * runs and has the image (as after `nerdctl pull`); else the image's registry directly.
 */
export async function openSource(g: GlobalOptions, flags: SourceFlags, image: string): Promise<ImageSource> {
  if (flags.ociLayout) return OciLayoutSource.open(flags.ociLayout);
  if (existsSync(g.address)) {
    const client = containerdClient(g);
    if (await containerdHas(client, image)) return new ContainerdImageSource(client, `containerd ${g.namespace}@${g.address}`);
    client.close();
  }
  process.stderr.write(`soci: ${image} is not in containerd (${g.address}); reading it from its registry\n`);
  const registry = new RegistryClient(registryOptionsFrom(g.config, { user: flags.user, plainHttp: flags.plainHttp }));
  return new RegistryImageSource(registry, image, true);
}

export async function withSource<T>(g: GlobalOptions, flags: SourceFlags, image: string, fn: (s: ImageSource) => Promise<T>): Promise<T> {
  const source = await openSource(g, flags, image);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}
