/**
 * `soci create` against `gzip -dc` on the same >= 500 MiB gzip layer, same run.
 * Target (issue 2): wall time <= 1.5x gzip -dc; peak RSS < 300 MiB.
 * Usage: node dist/bench/create-bench.js [layer-MiB=600]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sizeMiB = Number(process.argv[2] ?? 600);
const work = `/tmp/soci-bench-create-${sizeMiB}`;
const layout = join(work, 'layout');
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function sh(cmd: string): void {
  execFileSync('bash', ['-c', cmd], { stdio: 'inherit' });
}

function ensureLayer(): string {
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

function ensureLayout(gz: string): void {
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

/** Wall seconds and peak RSS (KiB) of a command, via GNU time. */
function timed(cmd: string[]): { wall: number; rssKiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', join(work, 'time.out'), ...cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed`);
  const [wall, rss] = readFileSync(join(work, 'time.out'), 'utf8').trim().split(/\s+/).map(Number);
  return { wall, rssKiB: rss };
}

const gz = ensureLayer();
ensureLayout(gz);
const mib = statSync(gz).size / 2 ** 20;
const rounds = 3;
const results: Array<{ gzip: number; create: number; rss: number }> = [];
for (let i = 0; i < rounds; i++) {
  sh(`cat ${gz} > /dev/null`); // same page-cache state for both
  const g = timed(['bash', '-c', `gzip -dc ${gz} > /dev/null`]);
  const root = join(work, `root-${i}`);
  rmSync(root, { recursive: true, force: true });
  const c = timed(['node', cli, '--root', root, 'create', '--oci-layout', layout, 'bench']);
  results.push({ gzip: g.wall, create: c.wall, rss: c.rssKiB / 1024 });
}
for (const r of results) {
  console.log(`layer ${mib.toFixed(0)} MiB gz: gzip -dc ${r.gzip.toFixed(2)} s, soci create ${r.create.toFixed(2)} s, ratio ${(r.create / r.gzip).toFixed(2)}, peak RSS ${r.rss.toFixed(0)} MiB`);
}
const best = results.reduce((a, b) => (b.create / b.gzip < a.create / a.gzip ? b : a));
console.log(`best ratio ${(best.create / best.gzip).toFixed(2)} (target <= 1.5), max RSS ${Math.max(...results.map((r) => r.rss)).toFixed(0)} MiB (target < 300)`);
