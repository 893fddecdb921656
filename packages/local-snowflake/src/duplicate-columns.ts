/**
 * Snowflake keeps duplicate column names as written (`SELECT * FROM (SELECT 1 AS a, 2 AS a)` has two
 * columns `A`; the driver's `OBJECT_WITH_RENAMED_DUPLICATED_COLUMNS` row mode renames them itself).
 * DuckDB renames the later ones when a subquery is expanded (`a`, `a_1`, skipping names that are taken),
 * so the driver would see different names. A column `X_N` whose base `X` is an earlier column's name,
 * and whose own name appears nowhere in the statement's text, is DuckDB's renaming: it is reported as
 * `X`. (A real `X_N` column is written somewhere in the SQL, so it keeps its name.)
 */
export function undoDuplicateRename(name: string, index: number, all: readonly string[], sqlText: string): string {
  const m = /^(.+)_(\d+)$/.exec(name);
  if (!m) return name;
  const base = m[1].toLowerCase();
  const earlier = all.slice(0, index).find((n) => n.toLowerCase() === base);
  if (earlier === undefined) return name;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_$])${escaped}($|[^\\p{L}\\p{N}_$])`, 'iu').test(sqlText) ? name : earlier;
}
