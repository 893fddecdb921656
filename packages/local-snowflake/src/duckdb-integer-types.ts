import { DuckDBTypeId } from '@duckdb/node-api';

/**
 * DuckDB's integer types. Snowflake has one integer type, NUMBER(38,0), so every one of these is sent
 * as `fixed` with precision 38 and scale 0, at the top level of a result and inside structured values alike.
 */
const INTEGER_TYPE_IDS: ReadonlySet<DuckDBTypeId> = new Set([
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
  DuckDBTypeId.BIGNUM,
  DuckDBTypeId.INTEGER_LITERAL,
]);

export function isIntegerType(typeId: DuckDBTypeId): boolean {
  return INTEGER_TYPE_IDS.has(typeId);
}
