import { Command, Option } from 'commander';
import { globalOptions, withSource, withStore } from '../context.js';
import { createIndexForManifest, selectManifests, type CreatedIndex, type LayerOutcome } from '../index-creator.js';
import { addBuildOptions, layerLine, platformsFrom, type BuildFlags } from '../build-options.js';
import { print, printJson } from '../output.js';
import { buildToolIdentifier } from '../version.js';
import { formatPlatform } from '../../ztoc/platform.js';
import type { SociVersion } from '../../ztoc/soci-index.js';

interface CreateFlags extends BuildFlags {
  indexVersion: SociVersion;
}

export function createCommand(): Command {
  return addBuildOptions(new Command('create'))
    .description('create a SOCI index (one zTOC per large layer) for an image and store it locally')
    .argument('<image>', 'image reference in containerd (or the image name inside --oci-layout)')
    .addOption(new Option('--index-version <version>', 'SOCI index manifest version').choices(['v1', 'v2']).default('v1'))
    .action(async (image: string, flags: CreateFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const results: CreatedIndex[] = await withStore(g, (store) =>
        withSource(g, flags, image, async (source) => {
          const { selected } = await selectManifests(source, image, platformsFrom(flags));
          const out: CreatedIndex[] = [];
          for (const m of selected) {
            const onLayer = flags.json ? undefined : (o: LayerOutcome) => print(layerLine(o));
            const created = await createIndexForManifest(source, store, image, m, {
              spanSize: flags.spanSize,
              minLayerSize: flags.minLayerSize,
              force: !!flags.force,
              version: flags.indexVersion,
              buildTool: buildToolIdentifier(),
            }, onLayer);
            if (!flags.json) {
              const how = created.reused ? 'exists (use --force to rebuild)' : 'created';
              print(`soci index ${created.digest} ${how} for manifest ${m.desc.digest} [${formatPlatform(m.platform)}]`);
            }
            out.push(created);
          }
          return out;
        }),
      );
      if (flags.json) {
        printJson(results.map((r) => ({ digest: r.digest, size: r.size, manifest_digest: r.manifest.digest, platform: formatPlatform(r.platform), reused: r.reused, layers: r.layers })));
      }
    });
}
