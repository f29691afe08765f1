/**
 * Walks a parsed TOML table against the schema. Never stops at the first problem: every unknown
 * key, wrong type and bad value is collected so one start attempt reports them all. Where a value
 * is rejected its default is used, only so that the walk can go on; the caller refuses the
 * config if any problem was found.
 */
import { formatKeyPath, isTable, tomlTypeOf, type Segment } from './key-path.js';
import type { FieldSpec, ListSpec, MapSpec, NodeSpec, ScalarValue, SectionSpec } from './schema-types.js';

export interface Problem {
  readonly kind: 'unknown' | 'missing' | 'type' | 'value';
  readonly path: readonly Segment[];
  /** For 'type': the expected type; for 'value': why the value is rejected. */
  readonly detail: string;
  /** For 'type': the TOML type that was found. */
  readonly actual?: string;
}

export type Table = Record<string, unknown>;

export function formatProblem(p: Problem, source: string): string {
  const key = JSON.stringify(formatKeyPath(p.path));
  switch (p.kind) {
    case 'unknown':
      return `unknown key ${key} in ${source}`;
    case 'missing':
      return `missing required key ${key} in ${source}`;
    case 'type':
      return `key ${key} in ${source}: expected ${p.detail}, got ${p.actual}`;
    case 'value':
      return `key ${key} in ${source}: ${p.detail}`;
  }
}

export function validateTable(spec: SectionSpec, table: Table): { value: Table; problems: Problem[] } {
  const problems: Problem[] = [];
  const value = readSection(spec, table, [], problems);
  return { value, problems };
}

function readSection(spec: SectionSpec, table: Table | undefined, path: Segment[], problems: Problem[]): Table {
  const given = table ?? {};
  const spellings = new Set<string>();
  for (const [name, node] of Object.entries(spec.fields)) {
    spellings.add(name);
    if (node.kind === 'field') node.aliases?.forEach((a) => spellings.add(a));
  }
  for (const key of Object.keys(given)) {
    if (!spellings.has(key)) problems.push({ kind: 'unknown', path: [...path, key], detail: '' });
  }
  const out: Table = {};
  for (const [name, node] of Object.entries(spec.fields)) {
    const used = [name, ...(node.kind === 'field' ? (node.aliases ?? []) : [])].filter((k) => Object.hasOwn(given, k));
    const key = used[0] ?? name;
    if (used.length > 1) {
      const other = JSON.stringify(formatKeyPath([...path, used[1]]));
      problems.push({ kind: 'value', path: [...path, key], detail: `also given as ${other}; use one spelling` });
    }
    out[name] = readNode(node, used.length > 0 ? given[key] : undefined, [...path, key], problems);
  }
  return out;
}

function readNode(node: NodeSpec, raw: unknown, path: Segment[], problems: Problem[]): unknown {
  switch (node.kind) {
    case 'field':
      return readField(node, raw, path, problems);
    case 'section':
      return readSection(node, expectTable(raw, path, problems), path, problems);
    case 'map':
      return readMap(node, raw, path, problems);
    case 'list':
      return readList(node, raw, path, problems);
  }
}

function expectTable(raw: unknown, path: Segment[], problems: Problem[]): Table | undefined {
  if (raw === undefined) return undefined;
  if (isTable(raw)) return raw;
  problems.push({ kind: 'type', path, detail: 'table', actual: tomlTypeOf(raw) });
  return undefined;
}

function readMap(node: MapSpec, raw: unknown, path: Segment[], problems: Problem[]): Table {
  const table = expectTable(raw, path, problems) ?? {};
  const entries: Array<[string, Table]> = [];
  for (const [key, v] of Object.entries(table)) {
    const entry = expectTable(v, [...path, key], problems);
    if (entry) entries.push([key, readSection(node.value, entry, [...path, key], problems)]);
  }
  // fromEntries defines own properties, so a host named "__proto__" cannot reach a prototype.
  return Object.fromEntries(entries);
}

function readList(node: ListSpec, raw: unknown, path: Segment[], problems: Problem[]): Table[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    problems.push({ kind: 'type', path, detail: 'array of tables', actual: tomlTypeOf(raw) });
    return [];
  }
  const items: Table[] = [];
  raw.forEach((v, i) => {
    const item = expectTable(v, [...path, i], problems);
    if (item) items.push(readSection(node.item, item, [...path, i], problems));
  });
  return items;
}

function readField(spec: FieldSpec, raw: unknown, path: Segment[], problems: Problem[]): ScalarValue {
  if (raw === undefined) {
    if (spec.required) problems.push({ kind: 'missing', path, detail: '' });
    return spec.default;
  }
  const actual = tomlTypeOf(raw);
  if (actual !== spec.type) {
    problems.push({ kind: 'type', path, detail: spec.type, actual });
    return spec.default;
  }
  const reason = typeof raw === 'bigint' ? integerReason(spec, raw) : scalarReason(spec, raw as ScalarValue);
  if (reason !== undefined) {
    problems.push({ kind: 'value', path, detail: reason });
    return spec.default;
  }
  return typeof raw === 'bigint' ? Number(raw) : (raw as ScalarValue);
}

function integerReason(spec: FieldSpec, v: bigint): string | undefined {
  const min = BigInt(spec.min ?? Number.MIN_SAFE_INTEGER);
  const max = BigInt(spec.max ?? Number.MAX_SAFE_INTEGER);
  if (v < min) return `must be >= ${min}, got ${v}`;
  if (v > max) return `must be <= ${max}, got ${v}`;
  return spec.check?.(Number(v));
}

function scalarReason(spec: FieldSpec, v: ScalarValue): string | undefined {
  if (spec.oneOf && !spec.oneOf.includes(String(v))) {
    const allowed = spec.oneOf.map((s) => JSON.stringify(s)).join(', ');
    return spec.secret ? `must be one of ${allowed}` : `must be one of ${allowed}, got ${JSON.stringify(v)}`;
  }
  return spec.check?.(v);
}
