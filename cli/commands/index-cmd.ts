import { Command } from 'commander';
import { notFound } from '../../errors/errors.js';
import type { LocalStore } from '../../store/local-store.js';
import { parseSociIndex } from '../../ztoc/soci-index.js';
import { globalOptions, withStore } from '../context.js';
import { formatTable, print, printJson } from '../output.js';
import { parsePlatform, formatPlatform } from '../../ztoc/platform.js';

interface ListFlags {
  ref?: string;
  platform?: string;
  quiet?: boolean;
  json?: boolean;
}

function listCommand(): Command {
  return new Command('list')
    .alias('ls')
    .description('list the SOCI indexes in the local store')
    .option('-r, --ref <image>', 'only indexes of this image reference')
    .option('-p, --platform <platform>', 'only indexes for this platform')
    .option('-q, --quiet', 'print digests only')
    .option('--json', 'print JSON')
    .action(async (flags: ListFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        const platform = flags.platform ? formatPlatform(parsePlatform(flags.platform)) : undefined;
        const rows = store.db.listIndexes({ imageRef: flags.ref, platform });
        if (flags.json) return printJson(rows);
        if (flags.quiet) return rows.forEach((r) => print(r.digest));
        process.stdout.write(
          formatTable(
            ['DIGEST', 'SIZE', 'IMAGE REF', 'PLATFORM', 'MANIFEST DIGEST', 'VERSION', 'CREATED'],
            rows.map((r) => [r.digest, r.size, r.imageRef, r.platform, r.manifestDigest, r.version, r.created]),
          ),
        );
      });
    });
}

function infoCommand(): Command {
  return new Command('info')
    .description('print the manifest of a SOCI index')
    .argument('<digest>', 'index digest')
    .action(async (digest: string, _flags: unknown, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        const bytes = await store.content.get(digest);
        parseSociIndex(bytes, `soci index ${digest}`);
        process.stdout.write(JSON.stringify(JSON.parse(bytes.toString('utf8')), null, 2) + '\n');
      });
    });
}

/** Removes an index, and the zTOCs no other index in the store still refers to. */
export async function removeIndex(store: LocalStore, digest: string): Promise<string[]> {
  const record = store.db.getIndex(digest);
  const bytes = await store.content.get(digest).catch(() => undefined);
  if (!record && !bytes) throw notFound(`soci index ${digest} not found in local store`);
  const ztocs = bytes ? parseSociIndex(bytes, `soci index ${digest}`).ztocs.map((z) => z.ztocDigest) : [];
  store.db.removeIndex(digest);
  await store.content.delete(digest);
  const stillUsed = new Set<string>();
  for (const other of store.db.listIndexes()) {
    const b = await store.content.get(other.digest).catch(() => undefined);
    if (b) parseSociIndex(b).ztocs.forEach((z) => stillUsed.add(z.ztocDigest));
  }
  const removed: string[] = [];
  for (const z of ztocs) {
    if (stillUsed.has(z)) continue;
    store.db.removeZtoc(z);
    await store.content.delete(z);
    removed.push(z);
  }
  return removed;
}

function rmCommand(): Command {
  return new Command('remove')
    .alias('rm')
    .description('remove SOCI indexes (and their zTOCs that no other index uses) from the local store')
    .argument('[digests...]', 'index digests')
    .option('-r, --ref <image>', 'remove every index of this image reference')
    .action(async (digests: string[], flags: { ref?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        const targets = [...digests, ...(flags.ref ? store.db.listIndexes({ imageRef: flags.ref }).map((r) => r.digest) : [])];
        if (targets.length === 0) throw notFound(flags.ref ? `no soci index for image ${flags.ref}` : 'no index digest given');
        for (const d of targets) {
          const ztocs = await removeIndex(store, d);
          print(`removed soci index ${d}${ztocs.length ? ` and ${ztocs.length} ztoc(s)` : ''}`);
        }
      });
    });
}

export function indexCommand(): Command {
  return new Command('index')
    .description('manage SOCI indexes in the local store')
    .addCommand(listCommand())
    .addCommand(infoCommand())
    .addCommand(rmCommand());
}
