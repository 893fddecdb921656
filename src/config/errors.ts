/**
 * The environment holds a value the fleet cannot use. Thrown once at start-up, listing every bad
 * variable (name, value received unless secret, and what is expected), so one restart fixes them all.
 */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}
