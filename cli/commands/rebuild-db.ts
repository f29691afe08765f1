import { Command } from 'commander';
import { rebuildDb } from '../../store/rebuild-db.js';
import { globalOptions, withStore } from '../context.js';
import { print } from '../output.js';

export function rebuildDbCommand(): Command {
  return new Command('rebuild-db')
    .description('rebuild the artifact db from the blobs in the content directory')
    .action(async (_flags: unknown, cmd: Command) => {
      const g = globalOptions(cmd);
      await withStore(g, async (store) => {
        const r = await rebuildDb(store);
        print(`rebuilt artifact db: ${r.indexes.length} index(es), ${r.ztocs.length} ztoc(s)`);
      });
    });
}
