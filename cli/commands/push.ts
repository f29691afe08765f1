import { Command } from 'commander';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { formatReference, parseReference } from '../../fetcher/registry/reference.js';
import { registryOptionsFrom } from '../../fetcher/registry/client-from-config.js';
import { formatPlatform, parsePlatform } from '../../ztoc/platform.js';
import { globalOptions, withStore } from '../context.js';
import { indexesToPush, pushIndex } from '../index-pusher.js';
import { print } from '../output.js';
import { parseCount } from '../parse.js';

interface PushFlags {
  user?: string;
  plainHttp?: boolean;
  maxConcurrentUploads: number;
  quiet?: boolean;
  platform?: string;
}

export function pushCommand(): Command {
  return new Command('push')
    .description('push the newest SOCI index of an image (per platform) and its zTOCs to the image\'s registry')
    .argument('<image>', 'image reference (as given to soci create)')
    .option('-u, --user <user:password>', 'registry credentials (else ~/.docker/config.json)')
    .option('--plain-http', 'use plain HTTP for the registry (localhost always may)')
    .option('--max-concurrent-uploads <n>', 'zTOC uploads in parallel', parseCount, 3)
    .option('-p, --platform <platform>', 'only the index for this platform')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (image: string, flags: PushFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const repo = parseReference(image);
      const client = new RegistryClient(registryOptionsFrom(g.config, { user: flags.user, plainHttp: flags.plainHttp }));
      try {
        await withStore(g, async (store) => {
          const platform = flags.platform ? formatPlatform(parsePlatform(flags.platform)) : undefined;
          const names = [...new Set([image, formatReference(repo)])];
          for (const index of indexesToPush(store, names, platform)) {
            const r = await pushIndex(client, store, repo, index, {
              maxConcurrentUploads: flags.maxConcurrentUploads,
              onBlob: flags.quiet ? undefined : (d) => print(`pushed ztoc ${d.digest}`),
            });
            if (!flags.quiet) {
              print(`pushed soci index ${index.digest} [${index.platform}] to ${repo.domain}/${repo.path} (${r.blobs} ztoc(s); referrers: ${r.referrersFallback})`);
            }
          }
        });
      } finally {
        await client.close();
      }
    });
}
