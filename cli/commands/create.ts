import { Command, Option } from 'commander';
import { globalOptions, withSource, withStore } from '../context.js';
import { createIndexForManifest, selectManifests, type CreatedIndex } from '../index-creator.js';
import { print, printJson } from '../output.js';
import { collect, parseBytes, parsePositiveBytes } from '../parse.js';
import { buildToolIdentifier } from '../version.js';
import { DEFAULT_MIN_LAYER_SIZE, DEFAULT_SPAN_SIZE } from '../../ztoc/types.js';
import { hostPlatform, parsePlatform, formatPlatform } from '../../ztoc/platform.js';
import type { Platform } from '../../ztoc/oci.js';
import type { SociVersion } from '../../ztoc/soci-index.js';

interface CreateFlags {
  spanSize: number;
  minLayerSize: number;
  platform?: string[];
  allPlatforms?: boolean;
  force?: boolean;
  indexVersion: SociVersion;
  ociLayout?: string;
  json?: boolean;
}

export function platformsFrom(flags: { platform?: string[]; allPlatforms?: boolean }): Platform[] | 'all' {
  if (flags.allPlatforms) return 'all';
  return flags.platform?.length ? flags.platform.map(parsePlatform) : [hostPlatform()];
}

export function createCommand(): Command {
  return new Command('create')
    .description('create a SOCI index (one zTOC per large layer) for an image and store it locally')
    .argument('<image>', 'image reference in containerd (or the image name inside --oci-layout)')
    .option('--span-size <bytes>', 'span size of the zTOCs', parsePositiveBytes, DEFAULT_SPAN_SIZE)
    .option('--min-layer-size <bytes>', 'layers smaller than this get no zTOC', parseBytes, DEFAULT_MIN_LAYER_SIZE)
    .option('-p, --platform <platform>', 'platform to index, os/arch[/variant] (repeatable; default: this host)', collect)
    .option('--all-platforms', 'index every platform of a multi-platform image')
    .option('-f, --force', 'rebuild the index and zTOCs even if they already exist')
    .addOption(new Option('--index-version <version>', 'SOCI index manifest version').choices(['v1', 'v2']).default('v1'))
    .option('--oci-layout <path>', 'read the image from an OCI image layout directory or tar instead of containerd')
    .option('--json', 'print the result as JSON')
    .action(async (image: string, flags: CreateFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const results: CreatedIndex[] = await withStore(g, (store) =>
        withSource(g, flags.ociLayout, async (source) => {
          const { selected } = await selectManifests(source, image, platformsFrom(flags));
          const out: CreatedIndex[] = [];
          for (const m of selected) {
            const onLayer = flags.json
              ? undefined
              : (o: { layerDigest: string; ztocDigest?: string; skipped?: string }) =>
                  print(`layer ${o.layerDigest} -> ${o.ztocDigest ? `ztoc ${o.ztocDigest}` : `ztoc skipped (${o.skipped})`}`);
            const created = await createIndexForManifest(source, store, image, m, {
              spanSize: flags.spanSize,
              minLayerSize: flags.minLayerSize,
              platforms: [],
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
