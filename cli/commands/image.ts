import { Command } from 'commander';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { registryOptionsFrom } from '../../fetcher/registry/client-from-config.js';
import { SociIndexFinder } from '../../fetcher/soci-index-finder.js';
import { hostPlatform, parsePlatform } from '../../ztoc/platform.js';
import { containerdClient, globalOptions, withStore } from '../context.js';
import { lazyPull } from '../lazy-pull.js';
import { print, printJson } from '../output.js';

interface RpullFlags {
  sociIndexDigest?: string;
  plainHttp?: boolean;
  user?: string;
  platform?: string;
  snapshotter: string;
  json?: boolean;
}

function rpullCommand(): Command {
  return new Command('rpull')
    .description('pull an image lazily: record it in containerd and let the SOCI snapshotter mount its indexed layers')
    .argument('<image>', 'image reference')
    .option('--soci-index-digest <digest>', 'use this SOCI index (else: local store, v2 annotation, v1 referrers)')
    .option('--plain-http', 'plain HTTP to the registry (localhost always may)')
    .option('-u, --user <user:password>', 'registry credentials (else ~/.docker/config.json)')
    .option('--platform <platform>', 'platform to pull (default: this host)')
    .option('--snapshotter <name>', 'containerd snapshotter name of the SOCI daemon', 'soci')
    .option('--json', 'print the result as JSON')
    .action(async (image: string, flags: RpullFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const t0 = performance.now();
      const ref = parseReference(image);
      const registry = new RegistryClient(registryOptionsFrom(g.config, { user: flags.user, plainHttp: flags.plainHttp }));
      const containerd = containerdClient(g);
      try {
        await withStore(g, async (store) => {
          const finder = new SociIndexFinder(registry, store, { v1: g.config.pull_modes.soci_v1.enable, v2: g.config.pull_modes.soci_v2.enable });
          const platform = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
          const r = await lazyPull({ registry, containerd, finder, snapshotter: flags.snapshotter }, ref, platform, {
            indexDigest: flags.sociIndexDigest,
            onLayer: flags.json ? undefined : (l) => print(`layer ${l.digest} ${l.mode.padEnd(10)} ${(l.size / 2 ** 20).toFixed(1)} MiB  ${(l.ms / 1000).toFixed(2)} s`),
          });
          const seconds = (performance.now() - t0) / 1000;
          if (flags.json) return printJson({ image: r.name, manifest: r.manifest.digest, soci_index: r.index?.digest ?? null, discovery: r.index?.how ?? null, layers: r.layers, seconds });
          print(r.index ? `soci index ${r.index.digest} (${r.index.how})` : 'no soci index: every layer unpacked by containerd');
          print(`pulled ${r.name} in ${seconds.toFixed(2)} s`);
        });
      } finally {
        containerd.close();
        await registry.close();
      }
    });
}

export function imageCommand(): Command {
  return new Command('image').description('images in containerd').addCommand(rpullCommand());
}
