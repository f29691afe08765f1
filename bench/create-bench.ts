/**
 * `soci create` against `gzip -dc` on the same >= 500 MiB gzip layer, same run.
 * Target (issue 2): wall time <= 1.5x gzip -dc; peak RSS < 300 MiB.
 * Usage: node dist/bench/create-bench.js [layer-MiB=600]
 */
import { spawnSync } from 'node:child_process';
import { realLayer, sh } from './real-layer.js';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sizeMiB = Number(process.argv[2] ?? 600);
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Wall seconds and peak RSS (KiB) of a command, via GNU time. */
function timed(cmd: string[]): { wall: number; rssKiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', join(work, 'time.out'), ...cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed`);
  const [wall, rss] = readFileSync(join(work, 'time.out'), 'utf8').trim().split(/\s+/).map(Number);
  return { wall, rssKiB: rss };
}

const { work, gz, layout } = realLayer(sizeMiB);
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
