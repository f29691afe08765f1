/**
 * A real gzip layer for benchmarks: a whole tar of files from this machine (usr/lib, usr/share)
 * up to a size, gzip -6, in an OCI layout. Built once per size under /tmp and reused.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export interface RealLayer {
  work: string;
  gz: string;
  layout: string;
}

export function sh(cmd: string): void {
  execFileSync('bash', ['-c', cmd], { stdio: 'inherit' });
}

function ensureLayer(work: string, sizeMiB: number): string {
  const gz = join(work, 'layer.tar.gz');
  if (existsSync(gz)) return gz;
  mkdirSync(work, { recursive: true });
  // Real files (libraries, docs, python) compress like a real image layer does.
  // A whole tar of real files up to the size (cutting a tar short would make it invalid).
  sh(`cd / && python3 -c '
import os, sys
limit, total, out = ${sizeMiB} * 1048576, 0, open("${work}/files.txt", "wb")
for top in ("usr/lib", "usr/share"):
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if not os.path.isfile(p) or os.path.islink(p): continue
            total += os.path.getsize(p)
            if total > limit: sys.exit(0)
            out.write(p.encode() + b"\\0")
'`);
  sh(`tar -C / --null -cf ${work}/layer.tar -T ${work}/files.txt`);
  sh(`gzip -6 -c ${work}/layer.tar > ${gz}`);
  return gz;
}

function ensureLayout(layout: string, gz: string): void {
  if (existsSync(join(layout, 'index.json'))) return;
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(layout, 'blobs', 'sha256', hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const layerHex = execFileSync('sha256sum', [gz]).toString().split(' ')[0];
  sh(`ln -f ${gz} ${join(layout, 'blobs', 'sha256', layerHex)}`);
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerHex}`, size: statSync(gz).size }],
      }),
    ),
  );
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }),
  );
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
}


export function realLayer(sizeMiB: number): RealLayer {
  const work = `/tmp/soci-bench-layer-${sizeMiB}`;
  const layout = join(work, 'layout');
  const gz = ensureLayer(work, sizeMiB);
  ensureLayout(layout, gz);
  return { work, gz, layout };
}
