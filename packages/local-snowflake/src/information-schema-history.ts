import type { DuckDBConnection } from '@duckdb/node-api';
import type { QueryHistoryEntry, QueryHistoryFilter } from './query-history';
import type { Session } from './sessions';

/**
 * Snowflake's query history table functions, `INFORMATION_SCHEMA.QUERY_HISTORY_BY_SESSION()`,
 * `QUERY_HISTORY_BY_USER()` and `QUERY_HISTORY()` (optionally inside `TABLE(…)`, with `SESSION_ID =>`,
 * `USER_NAME =>` and `RESULT_LIMIT =>` arguments), served from the server's query history: before the
 * statement runs, the rows it asks for are written to a temporary table of its connection, which takes
 * the call's place in the SQL. Newest first; the statement reading them is included, still RUNNING.
 */

const CALL = /(TABLE\s*\(\s*)?(?:"?[A-Za-z_][\w$]*"?\s*\.\s*)?INFORMATION_SCHEMA\s*\.\s*QUERY_HISTORY(_BY_SESSION|_BY_USER)?\s*\(([^()]*)\)/gi;

/** The temporary table standing in for the call. */
const TABLE = '__local_snowflake_query_history';

// Snowflake's column names, in its order (the ones this server knows).
const COLUMNS: ReadonlyArray<readonly [string, string, (e: QueryHistoryEntry, s: Session) => string | number | null]> = [
  ['QUERY_ID', 'VARCHAR', (e) => e.queryId],
  ['QUERY_TEXT', 'VARCHAR', (e) => e.queryText],
  ['DATABASE_NAME', 'VARCHAR', (_e, s) => s.database],
  ['SCHEMA_NAME', 'VARCHAR', (_e, s) => s.schema],
  ['SESSION_ID', 'BIGINT', (e) => e.sessionId],
  ['USER_NAME', 'VARCHAR', (e) => e.user.toUpperCase()],
  ['ROLE_NAME', 'VARCHAR', (_e, s) => s.role],
  ['WAREHOUSE_NAME', 'VARCHAR', (_e, s) => s.warehouse],
  ['QUERY_TAG', 'VARCHAR', (e) => e.queryTag],
  ['EXECUTION_STATUS', 'VARCHAR', (e) => (e.status === 'ABORTED' ? 'FAILED_WITH_ERROR' : e.status)],
  ['ERROR_CODE', 'VARCHAR', (e) => e.errorCode],
  ['ERROR_MESSAGE', 'VARCHAR', (e) => e.errorMessage],
  ['START_TIME', 'TIMESTAMPTZ', (e) => new Date(e.startTime).toISOString()],
  ['END_TIME', 'TIMESTAMPTZ', (e) => (e.endTime === null ? null : new Date(e.endTime).toISOString())],
  ['TOTAL_ELAPSED_TIME', 'BIGINT', (e) => (e.endTime === null ? Date.now() : e.endTime) - e.startTime],
  ['ROWS_PRODUCED', 'BIGINT', (e) => e.rowsProduced],
];

/** A statement reading query history: its SQL with the calls replaced, and what to read. */
export interface HistoryRead {
  readonly sql: string;
  readonly filter: QueryHistoryFilter;
}

function namedArgument(args: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}\\s*=>\\s*(?:'((?:[^']|'')*)'|(\\d+))`, 'i').exec(args);
  return m ? (m[1]?.replace(/''/g, "'") ?? m[2]) : undefined;
}

/**
 * Finds the query history calls in a statement's (rewritten) SQL; undefined when there are none. The
 * filter is the last call's (one call per statement is what clients write).
 */
export function readHistoryCall(sql: string, session: Session): HistoryRead | undefined {
  let filter: QueryHistoryFilter | undefined;
  const replaced = sql.replace(CALL, (_m, table: string | undefined, kind: string | undefined, args: string) => {
    const limit = Number(namedArgument(args, 'RESULT_LIMIT') ?? 100);
    const sessionId = namedArgument(args, 'SESSION_ID');
    const user = namedArgument(args, 'USER_NAME');
    filter = { limit };
    if ((kind ?? '').toUpperCase() === '_BY_SESSION') filter.sessionId = sessionId === undefined ? session.id : Number(sessionId);
    else if ((kind ?? '').toUpperCase() === '_BY_USER') filter.user = user ?? session.user;
    // `TABLE(` was consumed with the call: its closing parenthesis goes too (marked, removed below).
    return table ? `${TABLE}\u0000` : TABLE;
  });
  if (!filter) return undefined;
  return { sql: replaced.replace(/\u0000\s*\)/g, ''), filter };
}

function literal(v: string | number | null): string {
  if (v === null) return 'NULL';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/'/g, "''")}'`;
}

/** Writes the entries into the connection's temporary table that the rewritten SQL reads. */
export async function materializeHistory(conn: DuckDBConnection, entries: readonly QueryHistoryEntry[], session: Session): Promise<void> {
  const columns = COLUMNS.map(([name, type]) => `"${name}" ${type}`).join(', ');
  await conn.run(`CREATE OR REPLACE TEMP TABLE ${TABLE} (${columns})`);
  for (let i = 0; i < entries.length; i += 500) {
    const rows = entries
      .slice(i, i + 500)
      .map((e) => `(${COLUMNS.map(([, type, value]) => `${literal(value(e, session))}::${type}`).join(', ')})`)
      .join(', ');
    await conn.run(`INSERT INTO ${TABLE} VALUES ${rows}`);
  }
}
