/**
 * containerd's filter syntax for List calls: `field.path op value` selectors joined by "," (all
 * must hold); several filter strings are alternatives (any may hold). Operators: `==`, `!=`,
 * `~=` (regular expression) and none (the field is present). Field names and values may be
 * double-quoted (Go-style escapes); a `~=` value may also be delimited by slashes.
 */
import { invalidArgument } from '../errors/errors.js';

export type Operator = 'present' | '==' | '!=' | '~=';

export interface Selector {
  readonly fieldpath: readonly string[];
  readonly op: Operator;
  readonly value: string;
  readonly regex?: RegExp;
}

/** Looks a field path up on an object; `present` false means the field is absent. */
export type FieldAdaptor = (fieldpath: readonly string[]) => { value: string; present: boolean };

export type Filter = (adapt: FieldAdaptor) => boolean;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  fail(msg: string): never {
    throw invalidArgument(`filter ${JSON.stringify(this.text)}: ${msg} at offset ${this.pos}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  peek(s: string): boolean {
    return this.text.startsWith(s, this.pos);
  }

  done(): boolean {
    return this.pos >= this.text.length;
  }

  quoted(delim: string): string {
    const start = this.pos;
    this.pos++;
    let out = '';
    while (!this.done() && this.text[this.pos] !== delim) {
      if (this.text[this.pos] === '\\' && this.pos + 1 < this.text.length) {
        out += unescape(this.text[this.pos + 1], delim);
        this.pos += 2;
      } else {
        out += this.text[this.pos++];
      }
    }
    if (this.done()) {
      this.pos = start;
      this.fail(`unterminated ${delim}-quoted string`);
    }
    this.pos++;
    return out;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"' };

function unescape(c: string, delim: string): string {
  if (c === delim) return c;
  // In a /regex/, a backslash escape other than the delimiter belongs to the regex itself.
  if (delim === '/') return `\\${c}`;
  return ESCAPES[c] ?? c;
}

function field(sc: Scanner): string {
  sc.skipSpace();
  if (sc.peek('"')) return sc.quoted('"');
  const m = /^[A-Za-z_][A-Za-z0-9_\-/]*/.exec(sc.text.slice(sc.pos));
  if (!m) sc.fail('expected a field name');
  sc.pos += m[0].length;
  return m[0];
}

function operator(sc: Scanner): Operator {
  sc.skipSpace();
  for (const op of ['==', '!=', '~='] as const) {
    if (sc.peek(op)) {
      sc.pos += 2;
      return op;
    }
  }
  return 'present';
}

function value(sc: Scanner, op: Operator): string {
  sc.skipSpace();
  if (sc.peek('"')) return sc.quoted('"');
  if (op === '~=' && sc.peek('/')) return sc.quoted('/');
  const m = /^[^\s,]+/.exec(sc.text.slice(sc.pos));
  if (!m) sc.fail('expected a value');
  sc.pos += m[0].length;
  return m[0];
}

function selector(sc: Scanner): Selector {
  const fieldpath = [field(sc)];
  while (sc.peek('.')) {
    sc.pos++;
    fieldpath.push(field(sc));
  }
  const op = operator(sc);
  if (op === 'present') return { fieldpath, op, value: '' };
  const v = value(sc, op);
  if (op !== '~=') return { fieldpath, op, value: v };
  try {
    return { fieldpath, op, value: v, regex: new RegExp(v) };
  } catch (err) {
    return sc.fail(`bad regular expression ${JSON.stringify(v)} (${(err as Error).message})`);
  }
}

/** The selectors of one filter string (all must match). */
export function parseFilter(text: string): Selector[] {
  const sc = new Scanner(text);
  const out: Selector[] = [];
  for (;;) {
    out.push(selector(sc));
    sc.skipSpace();
    if (sc.done()) return out;
    if (!sc.peek(',')) sc.fail('expected "," or end of filter');
    sc.pos++;
  }
}

function matches(s: Selector, adapt: FieldAdaptor): boolean {
  const { value, present } = adapt(s.fieldpath);
  switch (s.op) {
    case 'present': return present;
    case '==': return present && value === s.value;
    case '!=': return !present || value !== s.value;
    case '~=': return present && (s.regex as RegExp).test(value);
  }
}

/** A predicate for a list of filter strings; no (or only empty) strings match everything. */
export function parseFilters(texts: readonly string[]): Filter {
  const alternatives = texts.filter((t) => t.trim() !== '').map(parseFilter);
  if (alternatives.length === 0) return () => true;
  return (adapt) => alternatives.some((sels) => sels.every((s) => matches(s, adapt)));
}
