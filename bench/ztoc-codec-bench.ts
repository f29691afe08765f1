/**
 * encodeZtoc / decodeZtoc on a synthetic zTOC (default 20,000 entries, 200 checkpoints).
 * Reports CPU time (the machine may be shared) as min and median over several runs.
 * Run: npx tsc -p tsconfig.json && node dist/bench/ztoc-codec-bench.js [files] [checkpoints] [runs]
 */
import { sampleZtoc } from '../test/helpers/ztoc-fixtures.js';
import { decodeZtoc, encodeZtoc } from '../ztoc/ztoc-codec.js';

function cpuMs(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0].toFixed(1)} ms, median ${s[Math.floor(s.length / 2)].toFixed(1)} ms`;
}

const [files, checkpoints, runs] = [20000, 200, 9].map((d, i) => Number(process.argv[2 + i] ?? d));
const z = sampleZtoc(files, checkpoints);
let bytes = encodeZtoc(z);
const enc: number[] = [];
const dec: number[] = [];
for (let i = 0; i < runs; i++) {
  enc.push(cpuMs(() => (bytes = encodeZtoc(z))));
  dec.push(cpuMs(() => decodeZtoc(bytes)));
}
const mb = (n: number): string => (n / 1e6).toFixed(2);
console.log(`zTOC: ${files} entries, ${checkpoints} checkpoints, ${mb(bytes.length)} MB (zInfo ${mb(z.zinfoBlob.length)} MB)`);
console.log(`encode (validate + build): ${stats(enc)}`);
console.log(`decode (read + validate):  ${stats(dec)}`);
