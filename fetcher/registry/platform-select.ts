import { notFound } from '../../errors/errors.js';
import type { Descriptor, ImageIndex, Platform } from '../../ztoc/oci.js';
import { formatPlatform, platformMatches } from '../../ztoc/platform.js';

/**
 * The manifest of an index for a platform: among matching entries, one with the exact variant
 * first, then the first in index order (as containerd's platform matcher orders them).
 */
export function selectPlatformManifest(index: ImageIndex, platform: Platform): Descriptor {
  const matching = index.manifests.filter((d) => platformMatches(platform, d.platform));
  const exact = matching.find((d) => (d.platform?.variant ?? '') === (platform.variant ?? ''));
  const pick = exact ?? matching[0];
  if (!pick) {
    const have = index.manifests.map((d) => formatPlatform(d.platform) || 'unknown').join(', ');
    throw notFound(`image index has no manifest for platform ${formatPlatform(platform)} (has: ${have || 'none'})`);
  }
  return pick;
}
