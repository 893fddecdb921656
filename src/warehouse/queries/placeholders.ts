/**
 * `?, ?, ?` for `count` values. Only the number of placeholders depends on the input; the values
 * themselves are always bound.
 */
export function placeholders(count: number, group = '?'): string {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`placeholder count must be a positive integer, got ${count}`);
  return new Array<string>(count).fill(group).join(', ');
}
