import {
  DuckDBArrayValue,
  DuckDBDecimalValue,
  DuckDBListValue,
  DuckDBMapValue,
  type DuckDBResultReader,
  DuckDBStructValue,
  type DuckDBType,
  DuckDBTypeId,
  DuckDBUnionValue,
  type DuckDBValue,
  DuckDBVariantValue,
  type Json,
} from '@duckdb/node-api';
import { type FieldMeta, structuredColumn } from './dialect/structured-types';
import { isIntegerType } from './duckdb-integer-types';
import { formatNumberVector } from './vector-format';

/**
 * One entry of `data.rowtype`: the column metadata snowflake-sdk reads. `type` is the lower-case
 * Snowflake type name that picks the driver's converter (`fixed`/`real` → number, `text` → string,
 * `boolean`, `date`, `timestamp_ntz`/`timestamp_ltz` → Date, `variant`/`array`/`object` → parsed JSON).
 * `vector` is not one of the driver's types, so it falls through to "string as is": exactly how
 * snowflake-sdk 3.x hands real Snowflake `VECTOR(FLOAT, n)` columns to the application.
 */
export interface RowTypeEntry {
  name: string;
  database: string;
  schema: string;
  table: string;
  nullable: boolean;
  type: string;
  length: number | null;
  byteLength: number | null;
  precision: number | null;
  scale: number | null;
  collation: null;
  vectorDimension?: number;
  /** A structured OBJECT's fields, ARRAY's element or MAP's key and value (`dialect/structured-types.ts`). */
  fields?: FieldMeta[];
}

/**
 * A cell of Snowflake's JSON result shape: a string, null, or — for VECTOR cells, the bulk of an
 * embedding reply — the cell's text as ASCII bytes that need no JSON escaping, which the reply writer
 * copies into the reply as they are (`encodeQueryReply`). On the wire all three are JSON strings or null.
 */
export type ResultCell = string | Buffer | null;

/** A result in Snowflake's JSON result shape. */
export interface EncodedResult {
  rowtype: RowTypeEntry[];
  rowset: ResultCell[][];
}

type CellEncoder = (value: DuckDBValue, json: () => Json) => ResultCell;

const TEXT_LENGTH = 16_777_216;
const MICROS = 1_000_000n;

function entry(name: string, type: string, extra: Partial<RowTypeEntry> = {}): RowTypeEntry {
  return {
    name,
    database: '',
    schema: '',
    table: '',
    nullable: true,
    type,
    length: null,
    byteLength: null,
    precision: null,
    scale: null,
    collation: null,
    ...extra,
  };
}

/**
 * Seconds since the epoch as a decimal number with 9 fractional digits: the driver's wire form for
 * timestamps and times, which it reads as one signed number (`-1.750000000` is 1.75 s before 1970, not
 * -1 s and then +0.75 s).
 */
function epochText(units: bigint, perSecond: bigint): string {
  const negative = units < 0n;
  const magnitude = negative ? -units : units;
  const nanos = ((magnitude % perSecond) * 1_000_000_000n) / perSecond;
  return `${negative ? '-' : ''}${magnitude / perSecond}.${nanos.toString().padStart(9, '0')}`;
}

/**
 * A VARIANT cell as JSON text, written from the DuckDB value itself: DuckDB's own JSON conversion turns
 * BIGINTs into strings (to keep their precision), which would make `{"a":1}` come back as `{"a":"1"}`.
 * Integers are written as JSON numbers, exactly; JSON text held in the variant is kept as it is.
 */
function variantCell(v: DuckDBValue): string {
  return variantJson(v);
}

function variantJson(v: DuckDBValue | undefined, type?: DuckDBType): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return type?.alias?.toUpperCase() === 'JSON' ? v : JSON.stringify(v);
  if (v instanceof DuckDBVariantValue) return variantJson(v.value, v.type);
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) return `[${v.items.map((i) => variantJson(i)).join(',')}]`;
  if (v instanceof DuckDBStructValue) {
    return `{${Object.entries(v.entries)
      .map(([k, i]) => `${JSON.stringify(k)}:${variantJson(i)}`)
      .join(',')}}`;
  }
  if (v instanceof DuckDBMapValue) return `{${v.entries.map((e) => `${JSON.stringify(String(e.key))}:${variantJson(e.value)}`).join(',')}}`;
  if (v instanceof DuckDBUnionValue) return variantJson(v.value);
  if (v instanceof DuckDBDecimalValue) return v.toString();
  return JSON.stringify(String(v));
}

function plainText(v: DuckDBValue): string {
  return typeof v === 'string' ? v : String(v);
}

/** OBJECT/ARRAY/MAP columns: structured (with `fields`) when every leaf type has a structured form. */
function structured(name: string, type: DuckDBType, semiStructured: string): { meta: RowTypeEntry; encode: CellEncoder } {
  const column = structuredColumn(type, { type: semiStructured });
  const meta = entry(name, column.type, column.fields ? { fields: column.fields } : {});
  return { meta, encode: column.encode };
}

/** Chooses the Snowflake column type and the cell encoder for one DuckDB column type. */
function codecFor(name: string, type: DuckDBType): { meta: RowTypeEntry; encode: CellEncoder } {
  if (isIntegerType(type.typeId)) return { meta: entry(name, 'fixed', { precision: 38, scale: 0 }), encode: plainText };
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { meta: entry(name, 'boolean'), encode: (v) => (v ? '1' : '0') };
    case DuckDBTypeId.DECIMAL:
      return { meta: entry(name, 'fixed', { precision: type.width, scale: type.scale }), encode: plainText };
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return { meta: entry(name, 'real'), encode: plainText };
    case DuckDBTypeId.DATE:
      return { meta: entry(name, 'date'), encode: (v) => String((v as { days: number }).days) };
    case DuckDBTypeId.TIMESTAMP:
      return { meta: entry(name, 'timestamp_ntz', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { micros: bigint }).micros, MICROS) };
    case DuckDBTypeId.TIMESTAMP_S:
      return { meta: entry(name, 'timestamp_ntz', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { seconds: bigint }).seconds, 1n) };
    case DuckDBTypeId.TIMESTAMP_MS:
      return { meta: entry(name, 'timestamp_ntz', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { millis: bigint }).millis, 1000n) };
    case DuckDBTypeId.TIMESTAMP_NS:
      return { meta: entry(name, 'timestamp_ntz', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { nanos: bigint }).nanos, 1_000_000_000n) };
    case DuckDBTypeId.TIMESTAMP_TZ:
      return { meta: entry(name, 'timestamp_ltz', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { micros: bigint }).micros, MICROS) };
    case DuckDBTypeId.TIME:
      return { meta: entry(name, 'time', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { micros: bigint }).micros, MICROS) };
    case DuckDBTypeId.TIME_NS:
      return { meta: entry(name, 'time', { scale: 9, precision: 0 }), encode: (v) => epochText((v as { nanos: bigint }).nanos, 1_000_000_000n) };
    case DuckDBTypeId.BLOB:
      return {
        meta: entry(name, 'binary', { length: 8_388_608, byteLength: 8_388_608 }),
        encode: (v) =>
          Buffer.from((v as { bytes: Uint8Array }).bytes)
            .toString('hex')
            .toUpperCase(),
      };
    case DuckDBTypeId.ARRAY: {
      const elem = type.valueType.typeId;
      if (elem === DuckDBTypeId.FLOAT || elem === DuckDBTypeId.DOUBLE || elem === DuckDBTypeId.INTEGER) {
        return {
          meta: entry(name, 'vector', { vectorDimension: type.length }),
          encode: (v) => formatNumberVector((v as { items: readonly DuckDBValue[] }).items as readonly number[]),
        };
      }
      return structured(name, type, 'array');
    }
    case DuckDBTypeId.LIST:
      return structured(name, type, 'array');
    case DuckDBTypeId.STRUCT:
    case DuckDBTypeId.MAP:
      return structured(name, type, 'object');
    case DuckDBTypeId.UNION:
    case DuckDBTypeId.VARIANT:
      return { meta: entry(name, 'variant'), encode: variantCell };
    case DuckDBTypeId.VARCHAR:
      if (type.alias?.toUpperCase() === 'JSON') return { meta: entry(name, 'variant'), encode: plainText };
      return { meta: entry(name, 'text', { length: TEXT_LENGTH, byteLength: TEXT_LENGTH }), encode: plainText };
    default:
      // UUID, INTERVAL, ENUM, BIT, TIME_TZ, GEOMETRY, SQLNULL, …: their display text.
      return { meta: entry(name, 'text', { length: TEXT_LENGTH, byteLength: TEXT_LENGTH }), encode: plainText };
  }
}

/** The name reported for DuckDB's column `duckName`, the `index`-th of `all` (the result's columns). */
export type ColumnNaming = (duckName: string, index: number, all: readonly string[]) => string;

/**
 * Encodes a DuckDB result for the driver. `columnName` maps DuckDB's column name to the one reported
 * (Snowflake upper-cases unquoted identifiers).
 */
export function encodeResult(reader: DuckDBResultReader, columnName: ColumnNaming): EncodedResult {
  const names = reader.columnNames();
  const types = reader.columnTypes();
  const codecs = names.map((n, i) => codecFor(columnName(n, i, names), types[i]));
  const rows = reader.getRows();
  let jsonRows: Json[][] | undefined;
  const rowset: ResultCell[][] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const cells: ResultCell[] = new Array(codecs.length);
    for (let c = 0; c < codecs.length; c++) {
      const v = row[c];
      cells[c] =
        v === null
          ? null
          : codecs[c].encode(v, () => {
              jsonRows ??= reader.getRowsJson();
              return jsonRows[r][c];
            });
    }
    rowset[r] = cells;
  }
  return { rowtype: codecs.map((c) => c.meta), rowset };
}

/** Column metadata only, for `describeOnly` requests (the statement is prepared, never run). */
export function describeColumns(names: readonly string[], types: readonly DuckDBType[], columnName: ColumnNaming): EncodedResult {
  return { rowtype: names.map((n, i) => codecFor(columnName(n, i, names), types[i]).meta), rowset: [] };
}

/** The one-cell result Snowflake returns for statements without rows (DDL, session commands). */
export function statusResult(message: string): EncodedResult {
  return singleTextResult('status', message);
}

/** A one-cell text result under `column` (a status, `SYSTEM$WAIT`'s answer, a multi-statement request's). */
export function singleTextResult(column: string, text: string): EncodedResult {
  return {
    rowtype: [entry(column, 'text', { length: TEXT_LENGTH, byteLength: TEXT_LENGTH, nullable: false })],
    rowset: [[text]],
  };
}

/** The result Snowflake returns for DML: one `number of rows …` column holding the count. */
export function dmlCountResult(label: string, count: number): EncodedResult {
  return { rowtype: [entry(label, 'fixed', { precision: 19, scale: 0, nullable: false })], rowset: [[String(count)]] };
}
