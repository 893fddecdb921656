import { type DuckDBAppender, type DuckDBConnection, dateValue, decimalValue, timestampValue } from '@duckdb/node-api';
import { type DemoDataset, generateDataset } from './dataset';

/**
 * The demo tables, with upper-case column names because that is how Snowflake reports unquoted
 * identifiers. No primary keys: Snowflake does not enforce them either.
 */
const DATASET_DDL = [
  `CREATE TABLE IF NOT EXISTS DEALS (
     ID VARCHAR NOT NULL, NAME VARCHAR NOT NULL, STAGE VARCHAR NOT NULL, AMOUNT DECIMAL(12,2),
     OWNER VARCHAR, COMPANY VARCHAR, NOTES VARCHAR, CREATED_AT TIMESTAMP, STAGE_CHANGED_AT TIMESTAMP,
     UPDATED_AT TIMESTAMP, LAST_ACTIVITY_AT TIMESTAMP, CLOSE_DATE DATE)`,
  `CREATE TABLE IF NOT EXISTS GONG_CALLS (
     ID VARCHAR NOT NULL, DEAL_ID VARCHAR, STARTED_AT TIMESTAMP, TITLE VARCHAR, TRANSCRIPT VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS SLACK_MESSAGES (
     ID VARCHAR NOT NULL, CHANNEL VARCHAR, AUTHOR VARCHAR, DEAL_ID VARCHAR, TEXT VARCHAR, TS TIMESTAMP)`,
  `CREATE TABLE IF NOT EXISTS LINEAR_ISSUES (
     ID VARCHAR NOT NULL, TITLE VARCHAR, DESCRIPTION VARCHAR, STATE VARCHAR, PRIORITY INTEGER,
     DEAL_ID VARCHAR, UPDATED_AT TIMESTAMP)`,
];

/** What was loaded: row counts (all zero when an existing database file already had the tables). */
export interface DatasetCounts {
  deals: number;
  calls: number;
  slackMessages: number;
  issues: number;
  /** The day the demo timeline ends (ISO date, UTC); see `LocalWarehouseOptions.anchorDate`. */
  anchorDate: string;
}

const ts = (ms: number) => timestampValue(BigInt(ms) * 1000n);

function appendNullable(a: DuckDBAppender, v: string | null): void {
  if (v === null) a.appendNull();
  else a.appendVarchar(v);
}

async function withAppender(conn: DuckDBConnection, table: string, fill: (a: DuckDBAppender) => void): Promise<void> {
  const a = await conn.createAppender(table);
  try {
    fill(a);
    a.flushSync();
  } finally {
    a.closeSync();
  }
}

async function append(conn: DuckDBConnection, data: DemoDataset): Promise<void> {
  await withAppender(conn, 'DEALS', (a) => {
    for (const d of data.deals) {
      a.appendVarchar(d.id);
      a.appendVarchar(d.name);
      a.appendVarchar(d.stage);
      a.appendDecimal(decimalValue(BigInt(d.amountCents), 12, 2));
      a.appendVarchar(d.owner);
      a.appendVarchar(d.company);
      a.appendVarchar(d.notes);
      a.appendTimestamp(ts(d.createdAt));
      a.appendTimestamp(ts(d.stageChangedAt));
      a.appendTimestamp(ts(d.updatedAt));
      a.appendTimestamp(ts(d.lastActivityAt));
      a.appendDate(dateValue(d.closeDateDays));
      a.endRow();
    }
  });
  await withAppender(conn, 'GONG_CALLS', (a) => {
    for (const c of data.calls) {
      a.appendVarchar(c.id);
      a.appendVarchar(c.dealId);
      a.appendTimestamp(ts(c.startedAt));
      a.appendVarchar(c.title);
      a.appendVarchar(c.transcript);
      a.endRow();
    }
  });
  await withAppender(conn, 'SLACK_MESSAGES', (a) => {
    for (const m of data.slack) {
      a.appendVarchar(m.id);
      a.appendVarchar(m.channel);
      a.appendVarchar(m.author);
      appendNullable(a, m.dealId);
      a.appendVarchar(m.text);
      a.appendTimestamp(ts(m.ts));
      a.endRow();
    }
  });
  await withAppender(conn, 'LINEAR_ISSUES', (a) => {
    for (const i of data.issues) {
      a.appendVarchar(i.id);
      a.appendVarchar(i.title);
      a.appendVarchar(i.description);
      a.appendVarchar(i.state);
      a.appendInteger(i.priority);
      appendNullable(a, i.dealId);
      a.appendTimestamp(ts(i.updatedAt));
      a.endRow();
    }
  });
}

/**
 * Creates the demo tables and fills them from the seed with DuckDB's appender (bulk, no SQL per row).
 * A database that already has rows in `DEALS` (a reused `dbPath` file) is left as it is.
 */
export async function loadDemoDataset(conn: DuckDBConnection, seed: number, dealCount: number, anchorMs: number): Promise<DatasetCounts> {
  const anchorDate = new Date(anchorMs).toISOString().slice(0, 10);
  for (const ddl of DATASET_DDL) await conn.run(ddl);
  const existing = Number((await conn.runAndReadAll('SELECT count(*) FROM DEALS')).getRows()[0][0]);
  if (existing > 0) return { deals: 0, calls: 0, slackMessages: 0, issues: 0, anchorDate };
  const data = generateDataset(seed, dealCount, anchorMs);
  await conn.run('BEGIN TRANSACTION');
  try {
    await append(conn, data);
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK');
    throw err;
  }
  return { deals: data.deals.length, calls: data.calls.length, slackMessages: data.slack.length, issues: data.issues.length, anchorDate };
}
