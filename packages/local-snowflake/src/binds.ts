import type { DuckDBValue } from '@duckdb/node-api';
import { SnowflakeError } from './snowflake-error';

/**
 * One bind as the driver sends it in `bindings`: `{"1": {"type": "TEXT", "value": "…"}}`. In a batch
 * (array binding, the driver's executemany) every `value` is an array with one entry per row.
 * The driver stringifies everything except null: numbers, booleans and Dates (ISO text) arrive as text.
 */
export interface WireBind {
  type?: unknown;
  value?: unknown;
}

/** Parameter values for DuckDB: one row for a plain statement, many for an array-bound batch. */
export interface BindRows {
  readonly batch: boolean;
  readonly rows: readonly DuckDBValue[][];
}

const INTEGER_TEXT = /^[+-]?\d+$/;

function badBind(message: string): SnowflakeError {
  return new SnowflakeError('002049', `SQL compilation error:\n${message}`, '42601');
}

/**
 * Converts one wire value to what DuckDB binds. Integers stay exact (BigInt beyond 2^53), reals become
 * doubles, booleans booleans; TEXT and anything structured (VARIANT, OBJECT, ARRAY) stay strings.
 */
function toDuckValue(type: string, value: unknown, position: number): DuckDBValue {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') {
    if (typeof value === 'number' || typeof value === 'boolean') return value;
    throw badBind(`Bind variable :${position} has a value of type ${typeof value}; expected text or null`);
  }
  switch (type) {
    case 'FIXED': {
      if (INTEGER_TEXT.test(value)) {
        const big = BigInt(value);
        return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      const n = Number(value);
      return Number.isFinite(n) ? n : value;
    }
    case 'REAL': {
      const n = Number(value);
      return Number.isNaN(n) && value.trim() !== 'NaN' ? value : n;
    }
    case 'BOOLEAN': {
      const v = value.toLowerCase();
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      return value;
    }
    default:
      return value;
  }
}

/**
 * Reads the request's `bindings` into rows of DuckDB values, by position (`"1"` is the first).
 * `parameterCount` is how many placeholders the SQL references: a referenced bind that is missing is an
 * error (as in Snowflake); binds beyond it are ignored.
 */
export function readBindings(bindings: unknown, parameterCount: number): BindRows {
  if (bindings === undefined || bindings === null) {
    if (parameterCount > 0) throw badBind(`Bind variable :1 not set.`);
    return { batch: false, rows: [[]] };
  }
  if (typeof bindings !== 'object' || Array.isArray(bindings)) {
    throw badBind('bindings must be an object keyed by position ("1", "2", …)');
  }
  const map = bindings as Record<string, WireBind>;
  const columns: Array<{ type: string; value: unknown }> = [];
  for (let p = 1; p <= parameterCount; p++) {
    const bind = map[String(p)];
    if (!bind || typeof bind !== 'object') throw badBind(`Bind variable :${p} not set.`);
    columns.push({ type: typeof bind.type === 'string' ? bind.type.toUpperCase() : 'TEXT', value: bind.value });
  }

  const arrays = columns.filter((c) => Array.isArray(c.value));
  if (arrays.length === 0) {
    return { batch: false, rows: [columns.map((c, i) => toDuckValue(c.type, c.value, i + 1))] };
  }
  if (arrays.length !== columns.length) throw badBind('array binding needs an array for every bind variable');
  const rowCount = (columns[0].value as unknown[]).length;
  columns.forEach((c, i) => {
    const len = (c.value as unknown[]).length;
    if (len !== rowCount) throw badBind(`array bind :${i + 1} has ${len} values, :1 has ${rowCount}`);
  });
  const rows: DuckDBValue[][] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) {
    rows[r] = columns.map((c, i) => toDuckValue(c.type, (c.value as unknown[])[r], i + 1));
  }
  return { batch: true, rows };
}

/** True when any bound value (in any row of an array bind) contains `needle`. */
export function bindingsContain(bindings: unknown, needle: string): boolean {
  if (typeof bindings !== 'object' || bindings === null) return false;
  for (const bind of Object.values(bindings as Record<string, WireBind>)) {
    const value = bind?.value;
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && v.includes(needle))) return true;
  }
  return false;
}
