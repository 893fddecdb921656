import { type DuckDBConnection, type DuckDBPreparedStatement, type DuckDBValue, ResultReturnType, StatementType } from '@duckdb/node-api';
import type { BindRows } from './binds';
import { denseParameters } from './parameter-numbering';
import { type ColumnNaming, describeColumns, dmlCountResult, type EncodedResult, encodeResult, statusResult } from './result-encoding';
import { SnowflakeError } from './snowflake-error';

/** A statement's outcome in the shape the query reply needs. */
export interface Execution {
  readonly result: EncodedResult;
  /** Snowflake statement type id; the driver derives `getNumUpdatedRows()` from the DML ones. */
  readonly statementTypeId: number;
  /** Query ids of the statements of a multi-statement request, in order (reported as `data.resultIds`). */
  readonly resultIds?: readonly string[];
}

// Snowflake statement type ids (snowflake-sdk lib/connection/result/statement_type.js): 0x1000 SELECT,
// 0x3100 INSERT, 0x3200 UPDATE, 0x3300 DELETE, 0x3400 MERGE (0x3000–0x3fff is DML), 0x4000 session
// commands, 0x5000 transaction control, 0x6000+ DDL.
export const STATEMENT_TYPE_ID = {
  select: 0x1000,
  insert: 0x3100,
  update: 0x3200,
  delete: 0x3300,
  merge: 0x3400,
  session: 0x4000,
  transaction: 0x5000,
  ddl: 0x6000,
  multiStatement: 0xa000,
} as const;

function statementTypeId(t: StatementType): number {
  switch (t) {
    case StatementType.SELECT:
    case StatementType.EXPLAIN:
    case StatementType.PRAGMA:
    case StatementType.CALL:
      return STATEMENT_TYPE_ID.select;
    case StatementType.INSERT:
      return STATEMENT_TYPE_ID.insert;
    case StatementType.UPDATE:
      return STATEMENT_TYPE_ID.update;
    case StatementType.DELETE:
      return STATEMENT_TYPE_ID.delete;
    case StatementType.MERGE_INTO:
      return STATEMENT_TYPE_ID.merge;
    case StatementType.TRANSACTION:
      return STATEMENT_TYPE_ID.transaction;
    case StatementType.SET:
    case StatementType.VARIABLE_SET:
      return STATEMENT_TYPE_ID.session;
    default:
      return STATEMENT_TYPE_ID.ddl;
  }
}

const DML_LABEL: Partial<Record<number, string>> = {
  [STATEMENT_TYPE_ID.insert]: 'number of rows inserted',
  [STATEMENT_TYPE_ID.update]: 'number of rows updated',
  [STATEMENT_TYPE_ID.delete]: 'number of rows deleted',
  [STATEMENT_TYPE_ID.merge]: 'number of rows merged',
};

/**
 * Binds one row of values to a prepared statement whose parameters were renumbered densely (see
 * `denseParameters`): its parameter `$k` takes the bind at position `positions[k - 1]`, so `:2` without
 * `:1` takes the second value, as in Snowflake.
 */
function bindRow(prepared: DuckDBPreparedStatement, row: readonly DuckDBValue[], positions: readonly number[]): void {
  prepared.bind(
    positions.map((position) => {
      if (position > row.length) throw new SnowflakeError('002049', `SQL compilation error:\nBind variable :${position} not set.`, '42601');
      return row[position - 1];
    }),
  );
}

/**
 * Runs one statement on one DuckDB connection as a prepared statement: binds are parameters, never
 * text. An array-bound batch runs the prepared statement once per row inside one transaction (unless
 * the session already has one open), so a failing row leaves nothing half-inserted; DML counts are
 * summed and SELECT rows concatenated.
 *
 * `columnName` turns DuckDB column names into the ones reported to the client.
 */
export async function executeStatement(
  conn: DuckDBConnection,
  sql: string,
  binds: BindRows,
  opts: { inTransaction: boolean; columnName: ColumnNaming },
): Promise<Execution> {
  const dense = denseParameters(sql);
  const prepared = await conn.prepare(dense.sql);
  try {
    const typeId = statementTypeId(prepared.statementType);
    if (!binds.batch) {
      bindRow(prepared, binds.rows[0], dense.binds);
      const reader = await prepared.runAndReadAll();
      return { result: toResult(reader.returnType, typeId, reader.rowsChanged, () => encodeResult(reader, opts.columnName)), statementTypeId: typeId };
    }

    const ownTransaction = !opts.inTransaction;
    if (ownTransaction) await conn.run('BEGIN TRANSACTION');
    try {
      let changed = 0;
      let returnType: ResultReturnType = ResultReturnType.NOTHING;
      let combined: EncodedResult | undefined;
      for (const row of binds.rows) {
        bindRow(prepared, row, dense.binds);
        const reader = await prepared.runAndReadAll();
        returnType = reader.returnType;
        if (returnType === ResultReturnType.CHANGED_ROWS) {
          changed += reader.rowsChanged;
        } else if (returnType === ResultReturnType.QUERY_RESULT) {
          const encoded = encodeResult(reader, opts.columnName);
          if (combined) combined.rowset.push(...encoded.rowset);
          else combined = encoded;
        }
      }
      if (ownTransaction) await conn.run('COMMIT');
      const result =
        binds.rows.length === 0 && DML_LABEL[typeId]
          ? dmlCountResult(DML_LABEL[typeId]!, 0)
          : toResult(returnType, typeId, changed, () => combined ?? statusResult('Statement executed successfully.'));
      return { result, statementTypeId: typeId };
    } catch (err) {
      if (ownTransaction) await conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    prepared.destroySync();
  }
}

function toResult(returnType: ResultReturnType, typeId: number, rowsChanged: number, rows: () => EncodedResult): EncodedResult {
  if (returnType === ResultReturnType.CHANGED_ROWS) {
    const label = DML_LABEL[typeId];
    if (label) return dmlCountResult(label, rowsChanged);
    return statusResult('Statement executed successfully.');
  }
  if (returnType === ResultReturnType.QUERY_RESULT) return rows();
  return statusResult('Statement executed successfully.');
}

/** Prepares a statement and reports its result columns without running it (`describeOnly`). */
export async function describeStatement(conn: DuckDBConnection, sql: string, columnName: ColumnNaming): Promise<Execution> {
  const prepared = await conn.prepare(denseParameters(sql).sql);
  try {
    const names: string[] = [];
    const types = [];
    for (let i = 0; i < prepared.columnCount; i++) {
      names.push(prepared.columnName(i));
      types.push(prepared.columnType(i));
    }
    return { result: describeColumns(names, types, columnName), statementTypeId: statementTypeId(prepared.statementType) };
  } finally {
    prepared.destroySync();
  }
}
