/** Flattens the schema into documented key paths: maps show their key placeholder, lists `[]`. */
import type { NodeSpec, SectionSpec } from './schema-types.js';

export interface SchemaEntry {
  /** e.g. "fuse.attr_timeout", "resolver.host.<host>.mirrors[].host" */
  readonly path: string;
  readonly node: Exclude<NodeSpec, SectionSpec>;
}

export function schemaEntries(spec: SectionSpec, prefix = ''): SchemaEntry[] {
  const out: SchemaEntry[] = [];
  for (const [name, node] of Object.entries(spec.fields)) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (node.kind === 'section') {
      out.push(...schemaEntries(node, path));
      continue;
    }
    out.push({ path, node });
    if (node.kind === 'map') out.push(...schemaEntries(node.value, `${path}.${node.keyName}`));
    if (node.kind === 'list') out.push(...schemaEntries(node.item, `${path}[]`));
  }
  return out;
}
