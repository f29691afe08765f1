/**
 * Issue 5 performance, same run: docker-registry in a network namespace behind a veth pair
 * shaped with tc (tbf) to 100 Mbit/s and then 1 Gbit/s; containerd, the soci daemon and the
 * CLI on the host. A real Debian bookworm image with python3-torch (>= 600 MiB of gzip
 * layers, bench/debian-torch-image.ts) runs `import torch` (or, with --workload numpy, `import numpy`):
 *  - overlayfs: `ctr pull` + `ctr run`, fresh containerd;
 *  - soci: `soci image rpull` + `ctr run --snapshotter soci`, fresh containerd and daemon.
 * Each case starts after a sync and a dropped page cache.
 * Time is from the start of the pull to the workload's output line. Also reported: bytes over
 * the link before that line, and the bytes the workload really reads (page cache, overlayfs).
 * Targets: >= 4x sooner at 100 Mbit/s, >= 3x at 1 Gbit/s.
 *
 * Usage (root): node dist/bench/throttled-pull-bench.js [--build-only] [--rates 100,1000]
 *   [--span-size SIZE] [--daemon-config FILE] [--soci-only] [--workload torch|numpy]
 * --soci-only skips the overlayfs case (for comparing soci runs; no speed-up is reported).
 * The daemon's metrics at the output line are kept next to the logs (metrics-<rate>mbit.txt).
 * SOCI_BENCH_CACHE (default /var/cache/soci-bench) keeps the rootfs and the image layout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CTR_BIN, startContainerd, type Containerd } from '../test/helpers/containerd.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { freePort } from '../test/helpers/process.js';
import { parseAccessLog, startRegistry, type AccessLogEntry, type Registry } from '../test/helpers/registry.js';
import { soci } from '../test/helpers/soci-cli.js';
import { makeTempDir, removeDir } from '../test/helpers/tmp.js';
import { benchWorkload, ensureDebianTorchImage, type BenchImage, type BenchWorkload } from './debian-torch-image.js';
import { createThrottledLink, type ThrottledLink } from './netns-link.js';
import { dropPageCache, pageCacheResidency, readaheadFileFor, setReadahead, type PageCacheReads } from './page-cache-reads.js';
import { pushImageFromLayout } from './push-layout.js';

const CACHE = process.env.SOCI_BENCH_CACHE ?? '/var/cache/soci-bench';
const MiB = 2 ** 20;
const TARGETS: Record<number, number> = { 100: 4, 1000: 3 };
const REPO = 'bench/debian-torch';

function say(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/** Stops to run in reverse order, on success, failure or a signal. */
class Cleanup {
  private readonly stops: Array<() => Promise<void>> = [];

  /** Registers stop; the returned function runs it now and forgets it. */
  add(stop: () => Promise<void>): () => Promise<void> {
    this.stops.push(stop);
    return async () => {
      this.stops.splice(this.stops.indexOf(stop), 1);
      await stop();
    };
  }

  async all(): Promise<void> {
    while (this.stops.length > 0) await this.stops.pop()?.().catch((e: unknown) => say(`cleanup: ${String(e)}`));
  }
}

interface LinkSnapshot {
  rxBytes: number;
  log: AccessLogEntry[];
  metrics?: string;
}

interface CaseResult {
  pullS: number;
  /** From the start of `ctr run` to the output line. */
  runS: number;
  totalS: number;
  at: LinkSnapshot;
  startRx: number;
  startLog: number;
  pullLines?: string;
  /** 1-minute load average at the output (the machine is shared). */
  load: string;
}

interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
  /** performance.now() when the output line appeared. */
  outputAt: number;
  snapshot: Promise<LinkSnapshot>;
}

/**
 * `ctr run` with its output streamed, so the time is taken when the line appears, not when the
 * container has been torn down; the link counters are read at that moment too.
 */
function ctrRunUntilOutput(ctd: Containerd, args: string[], workload: BenchWorkload, snapshot: () => Promise<LinkSnapshot>): Promise<RunOutput> {
  const argv = ['--address', ctd.address, '--namespace', ctd.namespace, 'run', '--runc-root', ctd.runcRoot, ...args, ...workload.argv];
  return new Promise((resolve, reject) => {
    const child = spawn(CTR_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let outputAt = 0;
    let snap: Promise<LinkSnapshot> | undefined;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (snap === undefined && workload.output.test(stdout)) {
        outputAt = performance.now();
        snap = snapshot();
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (snap === undefined) return reject(new Error(`ctr run ${args.join(' ')}: no output line (exit ${code}): ${stderr.trim() || stdout.trim()}`));
      resolve({ code: code ?? -1, stdout, stderr, outputAt, snapshot: snap });
    });
  });
}

async function must(res: { code: number; stdout: string; stderr: string }, what: string): Promise<string> {
  if (res.code !== 0) throw new Error(`${what} failed (exit ${res.code}): ${res.stderr.trim() || res.stdout.trim()}`);
  return res.stdout;
}

interface Bench {
  link: ThrottledLink;
  reg: Registry;
  ref: string;
  cleanup: Cleanup;
  work: string;
  /** Kept after the run: daemon and registry logs. */
  logs: string;
  settings: Settings;
}

interface Settings {
  rates: number[];
  buildOnly: boolean;
  sociOnly: boolean;
  /** soci create --span-size; default the CLI's. */
  spanSize?: string;
  /** TOML appended to the daemon's config (tables only), e.g. a [fuse] or [blob] section. */
  daemonToml: string;
  /** --workload: what runs in the container (default torch). */
  workload: BenchWorkload;
}

function parseSettings(argv: string[]): Settings {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i >= 0 && argv[i + 1] === undefined) throw new Error(`${flag} needs a value`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const configFile = value('--daemon-config');
  return {
    rates: (value('--rates') ?? '100,1000').split(',').map(Number),
    buildOnly: argv.includes('--build-only'),
    sociOnly: argv.includes('--soci-only'),
    spanSize: value('--span-size'),
    daemonToml: configFile ? readFileSync(configFile, 'utf8') : '',
    workload: benchWorkload(value('--workload') ?? 'torch'),
  };
}

function snapshotter(b: Bench, metricsUrl?: string): () => Promise<LinkSnapshot> {
  return async () => {
    const [rxBytes, metrics] = await Promise.all([
      b.link.rxBytes(),
      metricsUrl ? fetch(metricsUrl).then((r) => r.text()) : Promise.resolve(undefined),
    ]);
    return { rxBytes, log: parseAccessLog(b.reg.logs()), metrics };
  };
}

interface Reads {
  /** Pages touched with readahead off: the workload's own working set. */
  exact: PageCacheReads;
  /** With the disk's readahead, what the kernel read for it. */
  withReadahead: PageCacheReads;
  readaheadKb: number;
}

/** The workload once more on the pulled image from a dropped page cache, then fincore over the unpacked layers. */
async function probeReads(ctd: Containerd, ref: string, workload: BenchWorkload, id: string): Promise<PageCacheReads> {
  await dropPageCache();
  await must(await ctd.ctr(['run', '--rm', ref, id, ...workload.argv]), 'ctr run (reads probe)');
  return pageCacheResidency([join(ctd.root, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots')]);
}

async function measureReads(ctd: Containerd, ref: string, workload: BenchWorkload, cleanup: Cleanup): Promise<Reads> {
  const raFile = await readaheadFileFor(ctd.root);
  const readaheadKb = Number((await readFile(raFile, 'utf8')).trim());
  const defaultRa = await probeReads(ctd, ref, workload, 'reads-ra');
  // Restored by the cleanup too, should a signal end the run in between.
  const restore = cleanup.add(await setReadahead(raFile, 0));
  let exact: PageCacheReads;
  try {
    exact = await probeReads(ctd, ref, workload, 'reads-exact');
  } finally {
    await restore();
  }
  return { exact, withReadahead: defaultRa, readaheadKb };
}

/**
 * Each case starts with nothing left to write back and a cold page cache: the case before
 * (2.4 GiB unpacked by overlayfs, then removed) would otherwise still be using the disk and
 * the CPU while this one is timed.
 */
async function quiesce(): Promise<void> {
  await dropPageCache();
}

async function overlayCase(b: Bench, withReads: boolean): Promise<{ r: CaseResult; reads?: Reads }> {
  const ctd = await startContainerd();
  const stop = b.cleanup.add(() => ctd.stop());
  try {
    await quiesce();
    const startRx = await b.link.rxBytes();
    const startLog = parseAccessLog(b.reg.logs()).length;
    const t0 = performance.now();
    await must(await ctd.ctr(['images', 'pull', '--plain-http', b.ref], { timeoutMs: 3_600_000 }), 'ctr pull');
    const t1 = performance.now();
    const out = await ctrRunUntilOutput(ctd, ['--rm', b.ref, 'bench'], b.settings.workload, snapshotter(b));
    await must(out, 'ctr run');
    const r: CaseResult = { pullS: (t1 - t0) / 1000, runS: (out.outputAt - t1) / 1000, totalS: (out.outputAt - t0) / 1000, at: await out.snapshot, startRx, startLog, load: loadavg()[0].toFixed(2) };
    return { r, reads: withReads ? await measureReads(ctd, b.ref, b.settings.workload, b.cleanup) : undefined };
  } finally {
    await stop();
  }
}

/** The daemon reaches the registry over plain HTTP through a hosts.toml, as containerd users configure it. */
async function hostsDir(dir: string, host: string): Promise<string> {
  await mkdir(join(dir, host), { recursive: true });
  await writeFile(join(dir, host, 'hosts.toml'), `server = "http://${host}"\n`);
  return dir;
}

async function sociCase(b: Bench, label: string): Promise<CaseResult> {
  const dir = await makeTempDir('soci-bench-case-');
  const rmDir = b.cleanup.add(() => removeDir(dir));
  try {
    const metricsPort = await freePort();
    const hosts = await hostsDir(join(dir, 'certs.d'), b.reg.host);
    const config = `metrics_address = "127.0.0.1:${metricsPort}"\n[registry]\nconfig_path = "${hosts}"\n${b.settings.daemonToml}`;
    const daemon = await startDaemon({ config, logLevel: 'info' });
    const stopDaemon = b.cleanup.add(async () => {
      await writeFile(join(b.logs, `daemon-${label}.log`), daemon.logs());
      await daemon.stop();
    });
    try {
      const ctd = await startContainerd({ proxyPlugins: { soci: daemon.address } });
      const stopCtd = b.cleanup.add(() => ctd.stop());
      try {
        await quiesce();
        const startRx = await b.link.rxBytes();
        const startLog = parseAccessLog(b.reg.logs()).length;
        const t0 = performance.now();
        const pullLines = await must(await soci(join(dir, 'cli-root'), ['image', 'rpull', '--plain-http', b.ref], ['--address', ctd.address]), 'soci image rpull');
        const t1 = performance.now();
        const out = await ctrRunUntilOutput(ctd, ['--rm', '--snapshotter', 'soci', b.ref, 'bench'], b.settings.workload, snapshotter(b, `http://127.0.0.1:${metricsPort}/metrics`));
        await must(out, 'ctr run --snapshotter soci');
        const at = await out.snapshot;
        await writeFile(join(b.logs, `metrics-${label}.txt`), at.metrics ?? '');
        return { pullS: (t1 - t0) / 1000, runS: (out.outputAt - t1) / 1000, totalS: (out.outputAt - t0) / 1000, at, startRx, startLog, pullLines, load: loadavg()[0].toFixed(2) };
      } finally {
        await stopCtd();
      }
    } finally {
      await stopDaemon();
    }
  } finally {
    await rmDir();
  }
}

/** Image and SOCI index (v1, referrers) pushed over the unshaped link. */
async function publish(b: Omit<Bench, 'ref'>, image: BenchImage): Promise<string> {
  const ref = `${b.reg.host}/${REPO}:1`;
  await pushImageFromLayout(b.reg.url, REPO, '1', image.layout);
  const builder = join(b.work, 'builder-root');
  const span = b.settings.spanSize ? ['--span-size', b.settings.spanSize] : [];
  say((await must(await soci(builder, ['create', '--plain-http', ...span, ref], ['--address', '/nonexistent']), 'soci create')).trimEnd().replace(/^/gm, '   '));
  say((await must(await soci(builder, ['push', '--plain-http', ref]), 'soci push')).trimEnd().replace(/^/gm, '   '));
  return ref;
}

/** Sum of a metric's samples whose labels contain `labels` (e.g. 'priority="demand"'). */
function metric(text: string | undefined, name: string, labels = ''): number {
  let sum = 0;
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\w+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += m[3] === '+Inf' ? Infinity : Number(m[3]);
  }
  return sum;
}

/** Blob GETs by digest: count and bytes. */
function blobGets(log: AccessLogEntry[]): Map<string, { n: number; bytes: number }> {
  const out = new Map<string, { n: number; bytes: number }>();
  for (const e of log) {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(e.path);
    if (e.method !== 'GET' || !m) continue;
    const have = out.get(m[1]) ?? { n: 0, bytes: 0 };
    out.set(m[1], { n: have.n + 1, bytes: have.bytes + e.bytes });
  }
  return out;
}

function total(gets: Map<string, { n: number; bytes: number }>): { n: number; bytes: number } {
  let n = 0;
  let bytes = 0;
  for (const g of gets.values()) {
    n += g.n;
    bytes += g.bytes;
  }
  return { n, bytes };
}

const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

interface Row {
  rate: number;
  plainS: number;
  lazyS: number;
  speedup: number;
  lazyRx: number;
}

function report(rate: number, image: BenchImage, plain: CaseResult, lazy: CaseResult): { text: string; row: Row } {
  const speedup = plain.totalS / lazy.totalS;
  const plainRx = plain.at.rxBytes - plain.startRx;
  const plainGets = total(blobGets(plain.at.log.slice(plain.startLog)));
  const lines = [
    `-- ${rate} Mbit/s`,
    `   overlayfs: ctr pull ${plain.pullS.toFixed(2)} s + ctr run to output ${plain.runS.toFixed(2)} s = ${plain.totalS.toFixed(2)} s; ` +
      `link ${mib(plainRx)} (${((plainRx * 8) / plain.pullS / 1e6).toFixed(0)} Mbit/s over the pull); ${plainGets.n} blob GETs, ${mib(plainGets.bytes)}; load ${plain.load}`,
    ...sociLines(image, lazy),
    `   speed-up ${speedup.toFixed(2)}x (target >= ${TARGETS[rate] ?? '?'}x): ${speedup >= (TARGETS[rate] ?? Infinity) ? 'met' : 'NOT met'}`,
  ];
  if (lazy.pullLines) lines.push(lazy.pullLines.trimEnd().replace(/^/gm, '   rpull: '));
  return { text: lines.join('\n'), row: { rate, plainS: plain.totalS, lazyS: lazy.totalS, speedup, lazyRx: lazy.at.rxBytes - lazy.startRx } };
}

/** The soci case: times, link bytes, GETs by layer, the daemon's span fetches and FUSE operations. */
function sociLines(image: BenchImage, lazy: CaseResult): string[] {
  const lazyRx = lazy.at.rxBytes - lazy.startRx;
  const lazyByBlob = blobGets(lazy.at.log.slice(lazy.startLog));
  const lazyGets = total(lazyByBlob);
  const m = lazy.at.metrics;
  const demandGets = metric(m, 'soci_span_fetch_duration_seconds_count', 'priority="demand"');
  const demandSecs = metric(m, 'soci_span_fetch_duration_seconds_sum', 'priority="demand"');
  const decodes = metric(m, 'soci_span_decode_wait_seconds_count', 'priority="demand"');
  const decodeSecs = metric(m, 'soci_span_decode_wait_seconds_sum', 'priority="demand"');
  const perLayer = image.layers.map((l) => {
    const g = lazyByBlob.get(l.digest) ?? { n: 0, bytes: 0 };
    return `${l.name}: ${g.n} GETs ${mib(g.bytes)} of ${mib(l.size)}`;
  });
  const layerDigests = new Set(image.layers.map((l) => l.digest));
  const other = [...lazyByBlob].filter(([d]) => !layerDigests.has(d)).reduce((s, [, g]) => s + g.bytes, 0);
  const ops = ['getattr', 'fgetattr', 'access', 'read', 'readdir', 'readlink', 'getxattr', 'listxattr']
    .map((op) => `${op} ${metric(m, 'soci_fuse_ops_total', `op="${op}"`)}`);
  return [
    `   soci:      rpull ${lazy.pullS.toFixed(2)} s + ctr run to output ${lazy.runS.toFixed(2)} s = ${lazy.totalS.toFixed(2)} s; ` +
      `link ${mib(lazyRx)} before the output (${((lazyRx * 8) / lazy.totalS / 1e6).toFixed(0)} Mbit/s); ${lazyGets.n} blob GETs answered by then, ${mib(lazyGets.bytes)}; load ${lazy.load}`,
    `   soci blob GETs by layer before the output: ${perLayer.join('; ')}; config + zTOCs ${mib(other)}`,
    `   soci span fetches before the output (daemon metrics): demand ${mib(metric(m, 'soci_span_fetch_bytes_total', 'priority="demand"'))} ` +
      `in ${metric(m, 'soci_span_fetch_requests_total', 'priority="demand"')} GETs for ${metric(m, 'soci_span_fetches_total', 'priority="demand",result="ok"')} spans` +
      // The duration histogram stays empty while the reader does not report it.
      `${demandGets > 0 ? ` (${((demandSecs / demandGets) * 1000).toFixed(1)} ms a GET, ${demandSecs.toFixed(1)} s of GET time)` : ''}` +
      `${decodes > 0 ? `, then ${((decodeSecs / decodes) * 1000).toFixed(1)} ms a span to verify and inflate (${decodeSecs.toFixed(1)} s)` : ''}; ` +
      `background ${mib(metric(m, 'soci_span_fetch_bytes_total', 'priority="background"'))}; cache misses ${metric(m, 'soci_span_cache_misses_total')}`,
    `   soci FUSE operations before the output: ${ops.join(', ')}`,
    `   soci next spans (blob.fetch_next_span): ${metric(m, 'soci_next_spans_fetched_total')} taken along with a miss, ${metric(m, 'soci_next_spans_read_total')} of them read; ` +
      `link estimate at the output: bodies at ${mib(metric(m, 'soci_link_body_rate_bytes_per_second'))}/s, a miss's fixed cost ${(metric(m, 'soci_demand_miss_fixed_seconds') * 1000).toFixed(1)} ms`,
  ];
}

function summary(image: BenchImage, rows: Row[], reads: Reads | undefined): string[] {
  const out: string[] = [];
  if (reads) {
    const e = reads.exact;
    out.push(`workload reads (overlayfs, page cache from a dropped cache, fincore): ${mib(e.residentBytes)} with readahead off ` +
      `(${mib(reads.withReadahead.residentBytes)} with the disk's ${reads.readaheadKb} KiB readahead), of ${mib(e.fileBytes)} unpacked; ` +
      `${e.filesTouched} of ${e.files} files touched, ${mib(e.touchedFileBytes)} in those files`);
  }
  out.push('| link | overlayfs: pull + run to output | soci: rpull + run to output | speed-up | image (gzip) | soci bytes over the link before output | bytes the workload reads |');
  out.push('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    out.push(`| ${r.rate} Mbit/s | ${r.plainS.toFixed(1)} s | ${r.lazyS.toFixed(1)} s | ${r.speedup.toFixed(2)}x | ${mib(image.compressedBytes)} | ${mib(r.lazyRx)} | ${reads ? mib(reads.exact.residentBytes) : '?'} |`);
  }
  return out;
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  say(`== image (cache ${CACHE})`);
  const image = await ensureDebianTorchImage(CACHE, say);
  for (const l of image.layers) say(`   ${l.digest.slice(0, 19)}… ${mib(l.size).padStart(10)}  ${l.name}`);
  say(`   ${mib(image.compressedBytes)} compressed${image.compressedBytes >= 600 * MiB ? '' : ' (below 600 MiB!)'}`);
  if (settings.buildOnly) return;

  const cleanup = new Cleanup();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void cleanup.all().finally(() => process.exit(130)));
  }
  try {
    const work = await makeTempDir('soci-throttled-bench-');
    cleanup.add(() => removeDir(work));
    const logs = join(CACHE, 'logs');
    await mkdir(logs, { recursive: true });
    say(`== link: netns + veth + tbf; registry inside the namespace (logs in ${logs})`);
    if (settings.spanSize || settings.daemonToml) say(`   span size ${settings.spanSize ?? 'default'}; daemon config extra: ${JSON.stringify(settings.daemonToml)}`);
    const link = await createThrottledLink();
    cleanup.add(() => link.destroy());
    const reg = await startRegistry({ listenAddress: link.opts.nsAddress, commandPrefix: link.exec });
    cleanup.add(async () => {
      await writeFile(join(logs, 'registry.log'), reg.logs());
      await reg.stop();
    });
    say(`   registry at ${reg.url}; pushing the image and its SOCI index (unshaped link)`);
    const ref = await publish({ link, reg, cleanup, work, logs, settings }, image);
    const b: Bench = { link, reg, ref, cleanup, work, logs, settings };

    let reads: Reads | undefined;
    const rows: Row[] = [];
    for (const rate of settings.rates) {
      await link.setRate(rate);
      if (settings.sociOnly) {
        say(`== ${rate} Mbit/s: soci`);
        for (const line of sociLines(image, await sociCase(b, `${rate}mbit`))) say(line);
        continue;
      }
      say(`== ${rate} Mbit/s: overlayfs`);
      const plain = await overlayCase(b, reads === undefined);
      reads ??= plain.reads;
      say(`== ${rate} Mbit/s: soci`);
      const lazy = await sociCase(b, `${rate}mbit`);
      const { text, row } = report(rate, image, plain.r, lazy);
      say(text);
      rows.push(row);
    }
    say('');
    for (const line of summary(image, rows, reads)) say(line);
  } finally {
    await cleanup.all();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`throttled-pull-bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
