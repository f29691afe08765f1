import { Command, Option } from 'commander';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ContainerdSink } from '../../fetcher/containerd-source.js';
import type { ImageSink, ImageSource } from '../../fetcher/image-source.js';
import { RegistryClient } from '../../fetcher/registry/registry-client.js';
import { RegistryImageSource } from '../../fetcher/registry/registry-source.js';
import { RegistrySink } from '../../fetcher/registry/registry-sink.js';
import { parseReference } from '../../fetcher/registry/reference.js';
import { registryOptionsFrom } from '../../fetcher/registry/client-from-config.js';
import { OciLayoutSink } from '../../fetcher/oci-layout.js';
import { invalidArgument } from '../../errors/errors.js';
import { formatPlatform } from '../../ztoc/platform.js';
import { containerdClient, globalOptions, withSource, withStore } from '../context.js';
import { convertImage } from '../image-converter.js';
import { print, printJson } from '../output.js';
import { buildToolIdentifier } from '../version.js';
import { addBuildOptions, layerLine, platformsFrom, type BuildFlags } from '../build-options.js';

interface ConvertFlags extends BuildFlags {
  output?: string;
}

/**
 * The converted image goes where the source is: containerd's content store, the registry
 * (pushed as DST), or an OCI layout (a tar output is written as a directory, packed at the end).
 */
async function openSink(g: ReturnType<typeof globalOptions>, flags: ConvertFlags, source: ImageSource, src: string, dst: string): Promise<{ sink: ImageSink; finish: () => Promise<void> }> {
  if (source instanceof RegistryImageSource) {
    const client = new RegistryClient(registryOptionsFrom(g.config, { user: flags.user, plainHttp: flags.plainHttp }));
    return { sink: new RegistrySink(client, parseReference(dst), parseReference(src)), finish: () => client.close() };
  }
  if (!flags.ociLayout) {
    if (flags.output) throw invalidArgument('--output needs --oci-layout (converting inside containerd writes to its content store)');
    return { sink: new ContainerdSink(containerdClient(g)), finish: async () => {} };
  }
  const out = flags.output ?? flags.ociLayout;
  if (!out.endsWith('.tar')) return { sink: new OciLayoutSink(out), finish: async () => {} };
  const dir = await mkdtemp(join(tmpdir(), 'soci-convert-'));
  return {
    sink: new OciLayoutSink(dir),
    finish: async () => {
      try {
        await promisify(execFile)('tar', ['-C', dir, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

export function convertCommand(): Command {
  return addBuildOptions(new Command('convert'))
    .description('convert an image into a SOCI-enabled image (SOCI index v2) named DST')
    .argument('<src>', 'source image (in containerd, or the image name inside --oci-layout)')
    .argument('<dst>', 'name of the converted image')
    .addOption(new Option('-o, --output <path>', 'with --oci-layout: write the converted image to this layout directory or .tar (default: into the source directory)'))
    .action(async (src: string, dst: string, flags: ConvertFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      if (flags.ociLayout?.endsWith('.tar') && !flags.output) throw invalidArgument('--output is required when --oci-layout is a tar');
      const result = await withStore(g, (store) =>
        withSource(g, flags, src, async (source) => {
          const { sink, finish } = await openSink(g, flags, source, src, dst);
          try {
            const r = await convertImage(source, sink, store, src, dst, {
              spanSize: flags.spanSize,
              minLayerSize: flags.minLayerSize,
              platforms: platformsFrom(flags),
              force: !!flags.force,
              version: 'v2',
              buildTool: buildToolIdentifier(),
            }, flags.json ? undefined : (o) => print(layerLine(o)));
            await finish();
            return r;
          } finally {
            await sink.close();
          }
        }),
      );
      if (flags.json) {
        printJson({ image: dst, index_digest: result.index.digest, manifests: result.converted.map((c) => ({ platform: formatPlatform(c.platform), manifest_digest: c.manifest.digest, soci_index_digest: c.sociIndex.digest })) });
        return;
      }
      for (const c of result.converted) print(`soci index ${c.sociIndex.digest} for manifest ${c.manifest.digest} [${formatPlatform(c.platform)}]`);
      print(`converted image ${dst} -> ${result.index.digest}`);
    });
}
