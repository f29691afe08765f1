import { Command } from 'commander';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { registryOptionsFrom } from '../../fetcher/registry/client-from-config.js';
import { SociIndexFinder } from '../../fetcher/soci-index-finder.js';
import { lazyUnmount } from '../../fs/mountpoint.js';
import { notFound } from '../../errors/errors.js';
import { hostPlatform, parsePlatform } from '../../ztoc/platform.js';
import { globalOptions, withStore } from '../context.js';
import { isMounted, mountOneLayer } from '../layer-mount.js';
import { print } from '../output.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

interface MountFlags {
  index?: string;
  plainHttp?: boolean;
  user?: string;
  platform?: string;
}

/** Resolves when SIGINT/SIGTERM arrives or the mount disappears (someone ran `soci unmount`). */
function untilStopped(dir: string): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string): void => {
      clearInterval(timer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = (): void => done('SIGINT');
    const onTerm = (): void => done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const timer = setInterval(() => {
      isMounted(dir).then((m) => !m && done('unmounted'), () => undefined);
    }, 1000);
  });
}

function mountCommand(): Command {
  return new Command('mount')
    .description('mount one layer of an image lazily at DIR (foreground until SIGINT/SIGTERM or soci unmount); no containerd needed')
    .argument('<image>', 'image reference in its registry')
    .argument('<layer-digest>', 'digest of the layer to mount')
    .argument('<dir>', 'mountpoint (an existing empty directory)')
    .option('--index <digest>', 'SOCI index to use (else: local store, v2 annotation, v1 referrers)')
    .option('--plain-http', 'plain HTTP to the registry (localhost always may)')
    .option('-u, --user <user:password>', 'registry credentials (else ~/.docker/config.json)')
    .option('--platform <platform>', 'platform of a multi-platform image (default: this host)')
    .action(async (image: string, layerDigest: string, dir: string, flags: MountFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const repo = parseReference(image);
      const registry = new RegistryClient(registryOptionsFrom(g.config, { user: flags.user, plainHttp: flags.plainHttp }));
      try {
        await withStore(g, async (store) => {
          const finder = new SociIndexFinder(registry, store, { v1: g.config.pull_modes.soci_v1.enable, v2: g.config.pull_modes.soci_v2.enable });
          const platform = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
          const m = await mountOneLayer(registry, finder, g.config, { repo, layerDigest, mountpoint: dir, platform, indexDigest: flags.index });
          print(`mounted layer ${layerDigest} at ${dir}`);
          const why = await untilStopped(dir);
          await m.close();
          await finder.stored();
          print(`unmounted ${dir} (${why})`);
        });
      } finally {
        await registry.close();
      }
      // fuse-native's session thread may keep the process alive after its mount is gone.
      process.exit(process.exitCode ?? 0);
    });
}

function unmountCommand(): Command {
  return new Command('unmount')
    .alias('umount')
    .description('unmount a layer mounted with soci mount')
    .argument('<dir>', 'mountpoint')
    .action(async (dir: string) => {
      if (!(await isMounted(dir))) throw notFound(`nothing is mounted at ${dir}`);
      try {
        await promisify(execFile)('fusermount', ['-u', dir]);
      } catch {
        await lazyUnmount(dir);
      }
      print(`unmounted ${dir}`);
    });
}

export function mountCommands(): Command[] {
  return [mountCommand(), unmountCommand()];
}
