import { SociError } from '../errors/errors.js';

/**
 * A refused configuration. The message holds one line per problem so an operator sees all of
 * them at once; `problems` keeps the same lines for callers and tests.
 */
export class ConfigError extends SociError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('invalid-argument', problems.join('\n'));
    this.problems = Object.freeze([...problems]);
    this.name = 'ConfigError';
  }
}
