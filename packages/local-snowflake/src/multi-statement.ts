import type { WireBind } from './binds';
import { SnowflakeError } from './snowflake-error';

/**
 * Multi-statement requests: one `sqlText` holding several statements separated by `;`, which Snowflake
 * runs only when `MULTI_STATEMENT_COUNT` (a statement or session parameter) allows it: `1`, the
 * default, refuses them; `0` takes any number; `N` requires exactly N. Each statement runs as a child
 * query with its own query id; the request's reply lists them in `data.resultIds`, and the driver
 * fetches each child's result by id (`stmt.hasNext()` / `stmt.NextResult()`).
 */

/** One statement of a request, and how many `?` placeholders it holds (binds are numbered across the request). */
export interface SplitStatement {
  readonly text: string;
  readonly positionalBinds: number;
}

/**
 * Splits a request's SQL at the `;` outside strings, quoted identifiers, `$$…$$` and comments; empty
 * statements (only spaces or comments) are dropped. Texts are trimmed, as Snowflake shows them.
 */
export function splitStatements(sql: string): SplitStatement[] {
  const out: SplitStatement[] = [];
  let start = 0;
  let positional = 0;
  let content = false;
  const push = (end: number) => {
    if (content) out.push({ text: sql.slice(start, end).trim(), positionalBinds: positional });
    start = end + 1;
    positional = 0;
    content = false;
  };
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (ch === "'" && sql[j] === '\\') j += 2;
        else if (sql[j] === ch && sql[j + 1] === ch) j += 2;
        else if (sql[j] === ch) break;
        else j++;
      }
      content = true;
      i = j + 1;
    } else if (ch === '$' && next === '$') {
      const end = sql.indexOf('$$', i + 2);
      content = true;
      i = end < 0 ? sql.length : end + 2;
    } else if ((ch === '-' && next === '-') || (ch === '/' && next === '/')) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (ch === ';') {
      push(i);
      i++;
    } else {
      if (ch === '?') positional++;
      if (!/\s/.test(ch)) content = true;
      i++;
    }
  }
  push(sql.length);
  return out;
}

/** `MULTI_STATEMENT_COUNT` as a number, or Snowflake's refusal of a value that is not a count. */
export function multiStatementCount(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new SnowflakeError('001008', `SQL compilation error:\ninvalid value [${String(value)}] for parameter 'MULTI_STATEMENT_COUNT'`, '22023');
  }
  return n;
}

/** Snowflake's refusal of a request whose statement count is not the one asked for. */
export function statementCountMismatch(actual: number, desired: number): SnowflakeError {
  return new SnowflakeError('000008', `Actual statement count ${actual} did not match the desired statement count ${desired}.`, '0A000');
}

/**
 * The binds of one statement of a multi-statement request. `?` placeholders are numbered across the
 * whole request (`select ?; select ?` takes binds 1 and 2), so a statement with `?` gets the binds after
 * `offset`, renumbered from 1; a statement with `:N` keeps the request's numbering.
 */
export function statementBindings(bindings: unknown, statement: SplitStatement, offset: number): unknown {
  if (typeof bindings !== 'object' || bindings === null || statement.positionalBinds === 0) return bindings;
  const all = bindings as Record<string, WireBind>;
  const own: Record<string, WireBind> = {};
  for (let p = 1; p <= statement.positionalBinds; p++) {
    const bind = all[String(offset + p)];
    if (bind !== undefined) own[String(p)] = bind;
  }
  return own;
}
