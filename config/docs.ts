/** The Markdown reference of every config key, generated from the schema for the README. */
import { CONFIG_SCHEMA } from './schema.js';
import type { FieldSpec, SectionSpec } from './schema-types.js';
import { schemaEntries, type SchemaEntry } from './schema-walk.js';

// Upstream treats 0 as "use the default" almost everywhere; saying otherwise up front saves
// anyone porting an upstream config.toml a surprise.
const NOTE =
  'Values are taken literally: unlike upstream, 0 means 0 except where a row says otherwise. ' +
  'Origin "upstream" means the key has the same name and meaning as in awslabs/soci-snapshotter; "ours" keys are specific to this implementation.';

export function renderConfigDocs(spec: SectionSpec = CONFIG_SCHEMA): string {
  const rows = schemaEntries(spec).map(row);
  return [NOTE, '', '| Key | Type | Default | Origin | Description |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

function row({ path, node }: SchemaEntry): string {
  if (node.kind === 'map') return cells(path, 'table of tables', '`{}`', node.origin, node.doc);
  if (node.kind === 'list') return cells(path, 'array of tables', '`[]`', node.origin, node.doc);
  const aliases = node.aliases?.length ? ` Also accepted as ${node.aliases.map((a) => `\`${a}\``).join(', ')}.` : '';
  const required = node.required ? ' Required.' : '';
  return cells(path, typeText(node), defaultText(node), node.origin, node.doc + required + aliases);
}

function cells(path: string, type: string, dflt: string, origin: string, doc: string): string {
  return `| \`${path}\` | ${esc(type)} | ${esc(dflt)} | ${origin} | ${esc(doc)} |`;
}

function typeText(f: FieldSpec): string {
  if (f.oneOf) return f.oneOf.map((s) => JSON.stringify(s)).join(' | ');
  if (f.type !== 'integer') return f.type;
  if (f.min !== undefined && f.max !== undefined) return `integer ${f.min}..${f.max}`;
  if (f.min !== undefined) return `integer >= ${f.min}`;
  return 'integer';
}

function defaultText(f: FieldSpec): string {
  if (f.required) return '-';
  const v = `\`${JSON.stringify(f.default)}\``;
  return f.unit === 'bytes' && typeof f.default === 'number' && f.default > 0 ? `${v} (${humanBytes(f.default)})` : v;
}

function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (i < units.length - 1 && n % 1024 === 0 && n >= 1024) {
    n /= 1024;
    i++;
  }
  return `${n} ${units[i]}`;
}

/** A literal `|` would end the Markdown cell. */
function esc(s: string): string {
  return s.replace(/\|/g, '\\|');
}
