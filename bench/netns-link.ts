/**
 * A throttled link for benchmarks: a network namespace joined to the host by a veth pair,
 * shaped with tc's token bucket filter on both ends. Whatever runs in the namespace (the
 * registry) reaches the host only through this link, so its rate bounds every fetch.
 * This kernel has tbf and htb but no netem, so the link adds rate limits, not delay.
 */
import { readFile } from 'node:fs/promises';
import { execCapture, execOk } from '../test/helpers/exec.js';

export interface LinkOptions {
  /** Network namespace name. */
  netns: string;
  /** veth end in the host namespace. */
  hostIf: string;
  /** veth end inside the namespace. */
  nsIf: string;
  hostAddress: string;
  nsAddress: string;
  prefixLength: number;
}

export interface ThrottledLink {
  readonly opts: LinkOptions;
  /** Command prefix that runs a program inside the namespace. */
  readonly exec: string[];
  /** Shapes both directions to this many Mbit/s. */
  setRate(mbit: number): Promise<void>;
  /** Bytes the host has received over the link (from the namespace), headers included. */
  rxBytes(): Promise<number>;
  destroy(): Promise<void>;
}

export const DEFAULT_LINK: LinkOptions = {
  netns: 'soci-bench',
  hostIf: 'soci-bench-h',
  nsIf: 'soci-bench-n',
  hostAddress: '10.231.0.1',
  nsAddress: '10.231.0.2',
  prefixLength: 24,
};

/** Removes what an earlier run may have left; deleting the namespace also deletes its veth end and so the pair. */
async function removeLeftovers(o: LinkOptions): Promise<void> {
  await execCapture('ip', ['netns', 'del', o.netns]);
  await execCapture('ip', ['link', 'del', o.hostIf]);
}

/**
 * Burst of a few milliseconds of traffic: enough for one 64 KiB GSO segment at 100 Mbit/s
 * and for timer granularity at 1 Gbit/s (measured with curl: 95 and 940 Mbit/s).
 */
function tbfArgs(mbit: number): string[] {
  const burstBytes = Math.max(64 * 1024, Math.round((mbit * 1e6) / 8 * 0.004));
  return ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms'];
}

export async function createThrottledLink(opts: LinkOptions = DEFAULT_LINK): Promise<ThrottledLink> {
  const o = opts;
  const inNs = ['ip', 'netns', 'exec', o.netns];
  await removeLeftovers(o);
  const destroy = (): Promise<void> => removeLeftovers(o);
  try {
    await execOk('ip', ['netns', 'add', o.netns]);
    await execOk('ip', ['link', 'add', o.hostIf, 'type', 'veth', 'peer', 'name', o.nsIf, 'netns', o.netns]);
    await execOk('ip', ['addr', 'add', `${o.hostAddress}/${o.prefixLength}`, 'dev', o.hostIf]);
    await execOk('ip', ['link', 'set', o.hostIf, 'up']);
    await execOk('ip', ['-n', o.netns, 'addr', 'add', `${o.nsAddress}/${o.prefixLength}`, 'dev', o.nsIf]);
    await execOk('ip', ['-n', o.netns, 'link', 'set', o.nsIf, 'up']);
    await execOk('ip', ['-n', o.netns, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    opts: o,
    exec: inNs,
    setRate: async (mbit) => {
      await execOk('tc', ['qdisc', 'replace', 'dev', o.hostIf, ...tbfArgs(mbit)]);
      await execOk('tc', ['-n', o.netns, 'qdisc', 'replace', 'dev', o.nsIf, ...tbfArgs(mbit)]);
    },
    rxBytes: async () => Number((await readFile(`/sys/class/net/${o.hostIf}/statistics/rx_bytes`, 'utf8')).trim()),
    destroy,
  };
}
