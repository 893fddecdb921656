import type { BindValue, QueryOptions, Row, Warehouse } from '../types';
import { placeholders } from './placeholders';

/** One collector request: a keyword pattern, a minimum deal amount and a date window. */
export interface CollectRequest {
  pattern: string;
  minAmount: number;
  from: string;
  to: string;
}

type Table = 'hubspot' | 'gong' | 'slack' | 'linear';

// The per-source part of the statement. Fixed text: only the VALUES list grows with the batch.
const SOURCES: Record<Table, { select: string; join: string; order: string }> = {
  hubspot: {
    select: 'd.ID, d.NAME, d.STAGE, d.AMOUNT, d.OWNER, d.COMPANY, d.NOTES, d.CREATED_AT, d.STAGE_CHANGED_AT, d.UPDATED_AT, d.LAST_ACTIVITY_AT, d.CLOSE_DATE',
    join:
      "JOIN DEALS d ON (q.PATTERN = '%' OR d.NOTES ILIKE q.PATTERN OR d.NAME ILIKE q.PATTERN) AND d.AMOUNT >= q.MIN_AMOUNT " +
      'AND CAST(d.CLOSE_DATE AS DATE) BETWEEN CAST(q.D_FROM AS DATE) AND CAST(q.D_TO AS DATE)',
    order: 'd.AMOUNT DESC, d.ID',
  },
  gong: {
    select: 'c.ID, c.DEAL_ID, c.TITLE, c.TRANSCRIPT, c.STARTED_AT',
    join: "JOIN GONG_CALLS c ON (q.PATTERN = '%' OR c.TRANSCRIPT ILIKE q.PATTERN) AND CAST(c.STARTED_AT AS DATE) BETWEEN CAST(q.D_FROM AS DATE) AND CAST(q.D_TO AS DATE)",
    order: 'c.STARTED_AT DESC, c.ID',
  },
  slack: {
    select: 'm.ID, m.DEAL_ID, m.CHANNEL, m.AUTHOR, m.TEXT, m.TS',
    join: "JOIN SLACK_MESSAGES m ON (q.PATTERN = '%' OR m.TEXT ILIKE q.PATTERN) AND CAST(m.TS AS DATE) BETWEEN CAST(q.D_FROM AS DATE) AND CAST(q.D_TO AS DATE)",
    order: 'm.TS DESC, m.ID',
  },
  linear: {
    select: 'i.ID, i.DEAL_ID, i.TITLE, i.DESCRIPTION, i.STATE, i.PRIORITY, i.UPDATED_AT',
    join:
      "JOIN LINEAR_ISSUES i ON (q.PATTERN = '%' OR i.TITLE ILIKE q.PATTERN OR i.DESCRIPTION ILIKE q.PATTERN) " +
      'AND CAST(i.UPDATED_AT AS DATE) BETWEEN CAST(q.D_FROM AS DATE) AND CAST(q.D_TO AS DATE)',
    order: 'i.PRIORITY ASC, i.UPDATED_AT DESC, i.ID',
  },
};

/**
 * Collects rows for MANY requests (from concurrent workflows) in ONE statement: the requests are a bound
 * VALUES list joined to the source table, and `QUALIFY ROW_NUMBER() … <= limit` keeps each request's top
 * rows. Returns one row list per request, in request order.
 */
export async function collectSource(
  warehouse: Warehouse,
  source: Table,
  requests: readonly CollectRequest[],
  limit: number,
  opts: QueryOptions = {},
): Promise<Row[][]> {
  if (requests.length === 0) return [];
  const s = SOURCES[source];
  const binds: BindValue[] = [];
  for (const [i, r] of requests.entries()) binds.push(i, r.pattern, r.minAmount, r.from, r.to);
  binds.push(limit);
  const sql =
    `SELECT q.I AS Q, ${s.select} ` +
    `FROM (VALUES ${placeholders(requests.length, '(?, ?, ?, ?, ?)')}) AS q(I, PATTERN, MIN_AMOUNT, D_FROM, D_TO) ` +
    `${s.join} ` +
    `QUALIFY ROW_NUMBER() OVER (PARTITION BY q.I ORDER BY ${s.order}) <= ?`;
  const rows = await warehouse.query(sql, binds, { label: `collect_${source}`, ...opts });
  const out: Row[][] = requests.map(() => []);
  for (const row of rows) out[Number(row.Q)]?.push(row);
  return out;
}
