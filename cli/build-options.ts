import type { Command } from 'commander';
import { DEFAULT_MIN_LAYER_SIZE, DEFAULT_SPAN_SIZE } from '../ztoc/types.js';
import { hostPlatform, parsePlatform } from '../ztoc/platform.js';
import type { Platform } from '../ztoc/oci.js';
import type { LayerOutcome } from './index-creator.js';
import { collect, parseBytes, parsePositiveBytes } from './parse.js';

/** Flags shared by the commands that build zTOCs (create, convert). */
export interface BuildFlags {
  spanSize: number;
  minLayerSize: number;
  platform?: string[];
  allPlatforms?: boolean;
  force?: boolean;
  ociLayout?: string;
  user?: string;
  plainHttp?: boolean;
  json?: boolean;
}

export function addBuildOptions(cmd: Command): Command {
  return cmd
    .option('--span-size <bytes>', 'span size of the zTOCs', parsePositiveBytes, DEFAULT_SPAN_SIZE)
    .option('--min-layer-size <bytes>', 'layers smaller than this get no zTOC', parseBytes, DEFAULT_MIN_LAYER_SIZE)
    .option('-p, --platform <platform>', 'platform, os/arch[/variant] (repeatable; default: this host)', collect)
    .option('--all-platforms', 'every platform of a multi-platform image')
    .option('-f, --force', 'rebuild zTOCs (and the index) even if they already exist')
    .option('--oci-layout <path>', 'read the image from an OCI image layout directory or tar instead of containerd')
    .option('-u, --user <user:password>', 'registry credentials, when the image is read from its registry')
    .option('--plain-http', 'plain HTTP to the registry (localhost always may)')
    .option('--json', 'print the result as JSON');
}

export function platformsFrom(flags: { platform?: string[]; allPlatforms?: boolean }): Platform[] | 'all' {
  if (flags.allPlatforms) return 'all';
  return flags.platform?.length ? flags.platform.map(parsePlatform) : [hostPlatform()];
}

/** The per-layer line users (and the upstream CLI's users) expect. */
export function layerLine(o: LayerOutcome): string {
  return `layer ${o.layerDigest} -> ${o.ztocDigest ? `ztoc ${o.ztocDigest}` : `ztoc skipped (${o.skipped})`}`;
}
