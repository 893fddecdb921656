import { type DuckDBType, DuckDBTypeId, type DuckDBValue } from '@duckdb/node-api';
import { isIntegerType } from '../duckdb-integer-types';

/**
 * Snowflake's structured types (`OBJECT(a VARCHAR)`, `ARRAY(INT)`, `MAP(K, V)`) as DuckDB's STRUCT,
 * LIST and MAP reach the client: the column's rowtype carries `fields` (an OBJECT's fields by name, an
 * ARRAY's element, a MAP's key and value), and a cell is JSON in which every leaf is written as
 * Snowflake writes it there: text and numbers as JSON, booleans as true/false, dates, times and
 * timestamps as text in the default output formats, binary as hex. snowflake-sdk turns the fields into
 * typed values (numbers, Dates, Buffers' bytes, a JS `Map` for a MAP).
 *
 * A leaf type without a structured form (VARIANT, VECTOR, UUID…) makes the whole column semi-structured
 * instead: the same JSON, no `fields`, as Snowflake sends OBJECT/ARRAY without a schema.
 */
export interface FieldMeta {
  name: string;
  type: string;
  nullable: boolean;
  length: number | null;
  byteLength: number | null;
  precision: number | null;
  scale: number | null;
  collation: null;
  fields?: FieldMeta[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const TEXT_LENGTH = 16_777_216;

function field(name: string, type: string, extra: Partial<FieldMeta> = {}): FieldMeta {
  return { name, type, nullable: true, length: null, byteLength: null, precision: null, scale: null, collation: null, ...extra };
}

/** The `fields` entry for a value of `type`, or undefined when the type has no structured form. */
function fieldMeta(name: string, type: DuckDBType): FieldMeta | undefined {
  if (isIntegerType(type.typeId)) return field(name, 'fixed', { precision: 38, scale: 0 });
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return field(name, 'boolean');
    case DuckDBTypeId.DECIMAL:
      return field(name, 'fixed', { precision: type.width, scale: type.scale });
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return field(name, 'real');
    case DuckDBTypeId.VARCHAR:
      return type.alias?.toUpperCase() === 'JSON' ? undefined : field(name, 'text', { length: TEXT_LENGTH, byteLength: TEXT_LENGTH });
    case DuckDBTypeId.BLOB:
      return field(name, 'binary', { length: 8_388_608, byteLength: 8_388_608 });
    case DuckDBTypeId.DATE:
      return field(name, 'date');
    case DuckDBTypeId.TIME:
      return field(name, 'time', { scale: 9 });
    case DuckDBTypeId.TIMESTAMP:
      return field(name, 'timestamp_ntz', { scale: 9 });
    case DuckDBTypeId.TIMESTAMP_TZ:
      return field(name, 'timestamp_ltz', { scale: 9 });
    case DuckDBTypeId.STRUCT: {
      const fields = type.entryNames.map((n, i) => fieldMeta(n, type.entryTypes[i]));
      return fields.every((f) => f) ? field(name, 'object', { fields: fields as FieldMeta[] }) : undefined;
    }
    case DuckDBTypeId.LIST: {
      const elem = fieldMeta('', type.valueType);
      return elem ? field(name, 'array', { fields: [elem] }) : undefined;
    }
    case DuckDBTypeId.MAP: {
      const key = fieldMeta('key', type.keyType);
      const value = fieldMeta('value', type.valueType);
      return key && value ? field(name, 'map', { fields: [key, value] }) : undefined;
    }
    default:
      return undefined;
  }
}

const pad = (n: number | bigint, width = 2) => String(n).padStart(width, '0');

/** `YYYY-MM-DD HH:MM:SS.fff` of microseconds since the epoch (UTC). */
function timestampText(micros: bigint): string {
  let ms = micros / 1000n;
  if (micros < 0n && micros % 1000n !== 0n) ms -= 1n;
  return new Date(Number(ms)).toISOString().replace('T', ' ').replace('Z', '');
}

/** A DuckDB value as the JSON Snowflake writes inside a structured (or semi-structured) cell. */
function toSnowflakeJson(value: DuckDBValue, type: DuckDBType): Json {
  if (value === null) return null;
  // JSON numbers, as Snowflake writes them (a client's JSON.parse may lose digits beyond 2^53).
  if (isIntegerType(type.typeId) || type.typeId === DuckDBTypeId.DECIMAL) return Number(String(value));
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return value as boolean;
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return value as number;
    case DuckDBTypeId.BLOB:
      return Buffer.from((value as { bytes: Uint8Array }).bytes)
        .toString('hex')
        .toUpperCase();
    case DuckDBTypeId.DATE: {
      const days = (value as { days: number }).days;
      return new Date(days * 86_400_000).toISOString().slice(0, 10);
    }
    case DuckDBTypeId.TIME: {
      const micros = (value as { micros: bigint }).micros;
      const s = micros / 1_000_000n;
      return `${pad(s / 3600n)}:${pad((s / 60n) % 60n)}:${pad(s % 60n)}`;
    }
    case DuckDBTypeId.TIMESTAMP:
      return timestampText((value as { micros: bigint }).micros);
    case DuckDBTypeId.TIMESTAMP_TZ:
      // The session time zone is UTC.
      return `${timestampText((value as { micros: bigint }).micros)} +0000`;
    case DuckDBTypeId.STRUCT: {
      const entries = (value as { entries: Record<string, DuckDBValue> }).entries;
      const out: { [key: string]: Json } = {};
      type.entryNames.forEach((n, i) => {
        out[n] = toSnowflakeJson(entries[n] ?? null, type.entryTypes[i]);
      });
      return out;
    }
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY:
      return (value as { items: readonly DuckDBValue[] }).items.map((v) => toSnowflakeJson(v, type.valueType));
    case DuckDBTypeId.MAP: {
      const out: { [key: string]: Json } = {};
      for (const e of (value as { entries: Array<{ key: DuckDBValue; value: DuckDBValue }> }).entries) {
        out[String(toSnowflakeJson(e.key, type.keyType))] = toSnowflakeJson(e.value, type.valueType);
      }
      return out;
    }
    case DuckDBTypeId.VARCHAR:
      if (type.alias?.toUpperCase() === 'JSON') {
        try {
          return JSON.parse(value as string) as Json;
        } catch {
          return value as string;
        }
      }
      return value as string;
    default:
      return String(value);
  }
}

/** Column metadata and cell encoder for a DuckDB STRUCT, LIST or MAP result column. */
export function structuredColumn(type: DuckDBType, base: { type: string }): { type: string; fields?: FieldMeta[]; encode: (v: DuckDBValue) => string } {
  const meta = fieldMeta('', type);
  const encode = (v: DuckDBValue) => JSON.stringify(toSnowflakeJson(v, type));
  if (!meta) return { type: base.type, encode };
  return { type: meta.type, fields: meta.fields, encode };
}
