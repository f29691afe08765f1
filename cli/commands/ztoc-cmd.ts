import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { invalidArgument, notFound } from '../../errors/errors.js';
import { parseSociIndex } from '../../ztoc/soci-index.js';
import { decodeZtoc } from '../../ztoc/ztoc-codec.js';
import { findEntry, ztocInfo } from '../../ztoc/ztoc-info.js';
import { layerSpans, readLayerRange } from '../../ztoc/layer-spans.js';
import { MEDIA_TYPE_OCI_LAYER_GZIP } from '../../ztoc/oci.js';
import { containerdClient, globalOptions, withSource, withStore, type SourceFlags } from '../context.js';
import { ContainerdImageSource } from '../../fetcher/containerd-source.js';
import type { ImageSource } from '../../fetcher/image-source.js';
import { formatTable, print, printJson } from '../output.js';

function listCommand(): Command {
  return new Command('list')
    .alias('ls')
    .description('list the zTOCs in the local store')
    .option('-d, --ztoc-digest <digest>', 'only this zTOC')
    .option('-i, --image-ref <image>', 'only zTOCs of the indexes of this image')
    .option('-q, --quiet', 'print digests only')
    .option('--json', 'print JSON')
    .action(async (flags: { ztocDigest?: string; imageRef?: string; quiet?: boolean; json?: boolean }, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        let rows = store.db.listZtocs({ digest: flags.ztocDigest });
        if (flags.imageRef) {
          const wanted = new Set<string>();
          for (const i of store.db.listIndexes({ imageRef: flags.imageRef })) {
            const b = await store.content.get(i.digest).catch(() => undefined);
            if (b) parseSociIndex(b).ztocs.forEach((z) => wanted.add(z.ztocDigest));
          }
          rows = rows.filter((r) => wanted.has(r.digest));
        }
        if (flags.json) return printJson(rows);
        if (flags.quiet) return rows.forEach((r) => print(r.digest));
        process.stdout.write(formatTable(['DIGEST', 'SIZE', 'LAYER DIGEST', 'SPAN SIZE'], rows.map((r) => [r.digest, r.size, r.layerDigest, r.spanSize])));
      });
    });
}

function infoCommand(): Command {
  return new Command('info')
    .description('print a zTOC as JSON: header, spans and every file with its spans')
    .argument('<digest>', 'zTOC digest')
    .action(async (digest: string, _flags: unknown, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        const bytes = await store.content.get(digest);
        printJson(ztocInfo(decodeZtoc(bytes), bytes.length));
      });
    });
}

interface GetFileFlags extends SourceFlags {
  output?: string;
  image?: string;
}

function getFileCommand(): Command {
  return new Command('get-file')
    .description("extract one file of a layer using the layer's zTOC (reads only the spans the file covers)")
    .argument('<ztoc-digest>', 'zTOC digest')
    .argument('<file>', 'path of the file inside the layer')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--oci-layout <path>', 'read the layer from an OCI image layout instead of containerd')
    .option('-i, --image <image>', "read the layer through this image (from containerd, else its registry: only the file's spans are fetched)")
    .option('-u, --user <user:password>', 'registry credentials')
    .option('--plain-http', 'plain HTTP to the registry')
    .action(async (digest: string, file: string, flags: GetFileFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const data = await withStore(g, async (store) => {
        const z = decodeZtoc(await store.content.get(digest));
        const entry = findEntry(z, file);
        if (!entry) throw notFound(`file ${JSON.stringify(file)} not found in ztoc ${digest}`);
        if (entry.type !== 'reg') throw invalidArgument(`${JSON.stringify(file)} in ztoc ${digest} is a ${entry.type}, not a regular file`);
        const record = store.db.listZtocs({ digest })[0];
        if (!record) throw notFound(`ztoc ${digest} has no layer digest in the local db (run soci rebuild-db)`);
        const layer = { mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest: record.layerDigest, size: z.compressedArchiveSize };
        const spans = layerSpans(z);
        const read = (source: ImageSource): Promise<Buffer> =>
          readLayerRange(spans, entry.uncompressedOffset, entry.uncompressedSize, (s, e) => source.readRange(layer, s, e - s));
        if (flags.ociLayout || flags.image) {
          // A registry source needs the repository resolved before blob reads.
          return withSource(g, flags, flags.image ?? '', async (source) => {
            if (flags.image) await source.resolve(flags.image);
            return read(source);
          });
        }
        const source = new ContainerdImageSource(containerdClient(g), `containerd ${g.namespace}@${g.address}`);
        try {
          return await read(source);
        } finally {
          await source.close();
        }
      });
      if (flags.output) await writeFile(flags.output, data);
      else process.stdout.write(data);
    });
}

export function ztocCommand(): Command {
  return new Command('ztoc')
    .description('inspect zTOCs in the local store')
    .addCommand(listCommand())
    .addCommand(infoCommand())
    .addCommand(getFileCommand());
}
