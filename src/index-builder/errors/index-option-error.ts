/**
 * An index option (a setting of the index, the builder or the search service) has a value the
 * component cannot use. Thrown by the constructor/factory, never later inside a job: the message names
 * the option, the value received and what is expected, so one restart fixes it.
 */
export class IndexOptionError extends Error {
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`invalid index option ${option}: ${describe(value)} (expected ${expected})`);
    this.name = 'IndexOptionError';
  }
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}
