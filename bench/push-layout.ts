import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushBlob, pushManifest } from '../test/helpers/registry-push.js';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

/** Pushes the single image of an OCI layout to a plain-HTTP registry; returns its manifest. */
export async function pushImageFromLayout(registryUrl: string, repo: string, tag: string, layout: string): Promise<{ layers: Desc[]; config: Desc }> {
  const blob = (d: string): Promise<Buffer> => readFile(join(layout, 'blobs', 'sha256', d.slice(7)));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const mdesc = index.manifests[0];
  const mbytes = await blob(mdesc.digest);
  const manifest = JSON.parse(mbytes.toString()) as { layers: Desc[]; config: Desc };
  for (const d of [manifest.config, ...manifest.layers]) await pushBlob(registryUrl, repo, await blob(d.digest));
  await pushManifest(registryUrl, repo, tag, mbytes, mdesc.mediaType);
  return manifest;
}
