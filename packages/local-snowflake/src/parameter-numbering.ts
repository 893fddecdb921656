/**
 * DuckDB numbers a prepared statement's parameters densely: `SELECT $2` is refused at bind time
 * ("statement only has 1 parameter(s)"), while Snowflake's `SELECT :2` with binds `[a, b]` is `b`.
 * So the `$N` placeholders of the DuckDB text are renumbered `$1`, `$2`, … in order of first use
 * (outside strings, quoted identifiers and comments), and each new number remembers the bind it takes.
 */
export interface DenseParameters {
  readonly sql: string;
  /** `binds[i]` is the 1-based bind position the statement's parameter `$i+1` takes. */
  readonly binds: readonly number[];
}

/** Renumbers `$N` densely; the text is returned unchanged when it already is (the usual case). */
export function denseParameters(sql: string): DenseParameters {
  const found: Array<{ start: number; end: number; n: number }> = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (ch === "'" || ch === '"') {
      const escapes = ch === "'" && (sql[i - 1] === 'E' || sql[i - 1] === 'e');
      let j = i + 1;
      while (j < sql.length) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === ch && sql[j + 1] === ch) j += 2;
        else if (sql[j] === ch) break;
        else j++;
      }
      i = j + 1;
    } else if (ch === '$' && next === '$') {
      const end = sql.indexOf('$$', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (ch === '$' && next !== undefined && next >= '0' && next <= '9' && !/[\p{L}\p{N}_$]/u.test(sql[i - 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && sql[j] >= '0' && sql[j] <= '9') j++;
      found.push({ start: i, end: j, n: Number(sql.slice(i + 1, j)) });
      i = j;
    } else {
      i++;
    }
  }
  const binds: number[] = [];
  const index = new Map<number, number>();
  for (const f of found) {
    if (!index.has(f.n)) {
      binds.push(f.n);
      index.set(f.n, binds.length);
    }
  }
  if (binds.every((n, k) => n === k + 1)) return { sql, binds };
  let out = '';
  let last = 0;
  for (const f of found) {
    out += `${sql.slice(last, f.start)}$${index.get(f.n)}`;
    last = f.end;
  }
  return { sql: out + sql.slice(last), binds };
}
