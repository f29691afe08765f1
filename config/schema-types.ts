/**
 * The vocabulary of the declarative config schema. One tree describes every key once; the
 * validator, the defaults, the docs table and the tests all walk the same tree, so a key cannot
 * be documented but unvalidated (or the reverse).
 */

export type ScalarType = 'string' | 'integer' | 'boolean';
export type ScalarValue = string | number | boolean;

/** Where a key's name and meaning come from, shown in the docs for traceability. */
export type Origin = 'upstream' | 'ours';

export interface FieldSpec {
  readonly kind: 'field';
  readonly type: ScalarType;
  readonly default: ScalarValue;
  readonly doc: string;
  readonly origin: Origin;
  /** Inclusive bounds for integers. */
  readonly min?: number;
  readonly max?: number;
  /** Closed set of accepted strings. */
  readonly oneOf?: readonly string[];
  /** Extra rule; returns the reason the value is rejected, or undefined. */
  readonly check?: (value: ScalarValue) => string | undefined;
  /** Must be given (only meaningful inside list items and map entries). */
  readonly required?: boolean;
  /** Values never appear in messages or docs (credentials). */
  readonly secret?: boolean;
  /** Other spellings accepted for compatibility (upstream's Go field names under [http]). */
  readonly aliases?: readonly string[];
  /** Shown next to the default in the docs, e.g. bytes as "10 GiB". */
  readonly unit?: 'bytes';
}

export interface SectionSpec {
  readonly kind: 'section';
  readonly doc?: string;
  readonly fields: Readonly<Record<string, NodeSpec>>;
}

/** A table whose keys are chosen by the user (e.g. registry host names); default empty. */
export interface MapSpec {
  readonly kind: 'map';
  readonly doc: string;
  readonly origin: Origin;
  /** Placeholder shown in docs for the user-chosen key, e.g. "<host>". */
  readonly keyName: string;
  readonly value: SectionSpec;
}

/** An array of tables (`[[a.b]]` or `b = [{...}]`); default empty. */
export interface ListSpec {
  readonly kind: 'list';
  readonly doc: string;
  readonly origin: Origin;
  readonly item: SectionSpec;
}

export type NodeSpec = FieldSpec | SectionSpec | MapSpec | ListSpec;

/** Helpers keep the schema file declarative and short. */
export function field(type: ScalarType, dflt: ScalarValue, doc: string, extra: Partial<FieldSpec> = {}): FieldSpec {
  return { kind: 'field', type, default: dflt, doc, origin: 'upstream', ...extra };
}

export function section(fields: Record<string, NodeSpec>, doc?: string): SectionSpec {
  return { kind: 'section', fields, doc };
}
