#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { describe } from '../errors/errors.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_ROOT_PATH } from '../config/schema.js';
import { convertCommand } from './commands/convert.js';
import { createCommand } from './commands/create.js';
import { indexCommand } from './commands/index-cmd.js';
import { rebuildDbCommand } from './commands/rebuild-db.js';
import { pushCommand } from './commands/push.js';
import { imageCommand } from './commands/image.js';
import { mountCommands } from './commands/mount.js';
import { ztocCommand } from './commands/ztoc-cmd.js';
import { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE } from './context.js';
import { packageVersion } from './version.js';

export function buildProgram(): Command {
  const program = new Command('soci')
    .description('Seekable OCI: create, convert, inspect and push SOCI indexes; lazily pull images')
    .version(packageVersion())
    .option('--root <dir>', `root of the local SOCI store (default: root_path of the config file, else ${DEFAULT_ROOT_PATH})`)
    .option('-c, --config <file>', `snapshotter config file, TOML (default: ${DEFAULT_CONFIG_PATH} if it exists)`)
    .option('-a, --address <socket>', "containerd's gRPC socket", DEFAULT_CONTAINERD_ADDRESS)
    .option('-n, --namespace <ns>', 'containerd namespace', DEFAULT_NAMESPACE)
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(createCommand());
  program.addCommand(convertCommand());
  program.addCommand(indexCommand());
  program.addCommand(ztocCommand());
  program.addCommand(pushCommand());
  program.addCommand(imageCommand());
  for (const c of mountCommands()) program.addCommand(c);
  program.addCommand(rebuildDbCommand());
  overrideExit(program);
  return program;
}

/** Commander calls process.exit by default; we want errors to come back here for one-line reporting. */
function overrideExit(cmd: Command): void {
  for (const c of cmd.commands) {
    c.exitOverride();
    overrideExit(c);
  }
}

async function main(): Promise<void> {
  // `soci ztoc info | head`: a closed pipe is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`soci: ${describe(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
