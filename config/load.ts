/**
 * Reading the config: file -> TOML table -> validated, defaulted, frozen Config. parseConfig and
 * buildConfig are pure; loadConfig adds the file read.
 */
import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { invalidArgument, notFound } from '../errors/errors.js';
import { ConfigError } from './config-error.js';
import { crossCheck } from './cross-checks.js';
import { resolveDerivedDefaults } from './defaults.js';
import { CONFIG_SCHEMA, DEFAULT_CONFIG_PATH } from './schema.js';
import type { Config, ConfigOverrides } from './types.js';
import { formatProblem, validateTable, type Problem, type Table } from './validate.js';

export interface LoadOptions {
  /** Fail when the file is missing. Default: true for an explicit path, false for the default path. */
  readonly mustExist?: boolean;
  /** Command-line flags; they win over the file. */
  readonly overrides?: ConfigOverrides;
}

const FLAG_OF: Readonly<Record<keyof ConfigOverrides, string>> = {
  root_path: '--root',
  address: '--address',
  log_level: '--log-level',
};

export function loadConfig(path?: string, opts: LoadOptions = {}): Config {
  const file = path ?? DEFAULT_CONFIG_PATH;
  const mustExist = opts.mustExist ?? path !== undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !mustExist) return buildConfig({}, file, opts.overrides);
    if (code === 'ENOENT') throw notFound(`config file ${file}: not found`, err);
    throw invalidArgument(`config file ${file}: cannot read (${code ?? (err as Error).message})`, err);
  }
  return parseConfig(text, file, opts.overrides);
}

/** `source` names the text in messages (normally the file path). */
export function parseConfig(text: string, source: string, overrides?: ConfigOverrides): Config {
  let table: Table;
  try {
    // Integers as bigint keep TOML's integer/float distinction, so `attr_timeout = 1.5` is refused.
    table = parse(text, { integersAsBigInt: true });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    throw new ConfigError([`${source}:${err.line}:${err.column}: invalid TOML: ${reason}`]);
  }
  return buildConfig(table, source, overrides);
}

export function buildConfig(table: Table, source: string, overrides: ConfigOverrides = {}): Config {
  const flags = Object.entries(overrides).filter(([, v]) => v !== undefined) as Array<[keyof ConfigOverrides, string]>;
  const { value, problems } = validateTable(CONFIG_SCHEMA, { ...table, ...Object.fromEntries(flags) });
  const cfg = resolveDerivedDefaults(value);
  problems.push(...crossCheck(cfg));
  if (problems.length > 0) {
    const sourceOf = (p: Problem): string => {
      const flag = p.path.length === 1 ? flags.find(([k]) => k === p.path[0]) : undefined;
      return flag ? `command-line flag ${FLAG_OF[flag[0]]}` : source;
    };
    throw new ConfigError(problems.map((p) => formatProblem(p, sourceOf(p))));
  }
  return deepFreeze(cfg);
}

/** The configuration with every key at its default (no file, no flags). */
export function defaultConfig(): Config {
  return buildConfig({}, '<defaults>');
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}
