/** Pushes blobs and manifests to a test registry over the distribution HTTP API. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { MEDIA_TYPES, sha256Digest, type BuiltImage } from './images.js';

export interface PushOptions {
  /** Extra request headers, e.g. Authorization. */
  headers?: Record<string, string>;
  /** Accept a self-signed registry certificate. */
  insecureTls?: boolean;
}

const insecureAgent = (): Agent => new Agent({ connect: { rejectUnauthorized: false } });

async function send(url: string, init: { method: string; body?: Buffer; headers?: Record<string, string> }, opts: PushOptions, expect: number): Promise<{ get(name: string): string | null }> {
  const dispatcher = opts.insecureTls ? insecureAgent() : undefined;
  const res = await fetch(url, { method: init.method, body: init.body, headers: { ...opts.headers, ...init.headers }, dispatcher });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${init.method} ${url}: HTTP ${res.status} (expected ${expect}): ${text.slice(0, 300)}`);
  return res.headers;
}

/** Monolithic upload: POST opens an upload session, PUT with ?digest= sends the bytes and commits. */
export async function pushBlob(registryUrl: string, repo: string, data: Buffer, opts: PushOptions = {}): Promise<string> {
  const digest = sha256Digest(data);
  const started = await send(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' }, opts, 202);
  const location = started.get('location');
  if (!location) throw new Error(`POST ${registryUrl}/v2/${repo}/blobs/uploads/: no Location header`);
  const put = new URL(location, registryUrl);
  put.searchParams.set('digest', digest);
  await send(put.toString(), { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } }, opts, 201);
  return digest;
}

export async function pushManifest(registryUrl: string, repo: string, reference: string, body: Buffer, mediaType: string, opts: PushOptions = {}): Promise<string> {
  await send(`${registryUrl}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': mediaType } }, opts, 201);
  return sha256Digest(body);
}

/** Pushes a built image (layers, config, manifest) as repo:tag. */
export async function pushImage(registryUrl: string, repo: string, tag: string, image: BuiltImage, opts: PushOptions = {}): Promise<string> {
  for (const layer of image.layers) await pushBlob(registryUrl, repo, layer.blob, opts);
  await pushBlob(registryUrl, repo, image.config, opts);
  return pushManifest(registryUrl, repo, tag, image.manifest, MEDIA_TYPES.manifest, opts);
}

/** Reads a blob from an OCI layout directory. */
export function readLayoutBlob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(join(layoutDir, 'blobs', ...digest.split(':')));
}
