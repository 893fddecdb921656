import type { QueryOptions, Warehouse } from '../types';

/** Tables a search index can be rebuilt from, and the text each row contributes. */
const INDEX_SOURCES = {
  calls: { table: 'GONG_CALLS', text: "COALESCE(TITLE, '') || '. ' || COALESCE(TRANSCRIPT, '')" },
  messages: { table: 'SLACK_MESSAGES', text: "COALESCE(TEXT, '')" },
  deals: { table: 'DEALS', text: "COALESCE(NAME, '') || '. ' || COALESCE(NOTES, '')" },
} as const;
export type IndexSource = keyof typeof INDEX_SOURCES;

export async function countSourceRows(warehouse: Warehouse, source: IndexSource, opts: QueryOptions = {}): Promise<number> {
  const rows = await warehouse.query<{ N: unknown }>(`SELECT COUNT(*) AS N FROM ${INDEX_SOURCES[source].table}`, [], { label: `count_${source}`, ...opts });
  return Number(rows[0]?.N ?? 0);
}

/**
 * One chunk of (id, text) rows after `afterId`, in id order: keyset pagination, so a rebuild streams a
 * table of any size without holding it (and without OFFSET scans). `afterId` and `limit` are bound.
 */
export async function readSourceTexts(
  warehouse: Warehouse,
  source: IndexSource,
  afterId: string,
  limit: number,
  opts: QueryOptions = {},
): Promise<{ id: string; text: string }[]> {
  const { table, text } = INDEX_SOURCES[source];
  const rows = await warehouse.query<{ ID: unknown; T: unknown }>(
    `SELECT ID, SUBSTR(${text}, 1, 8000) AS T FROM ${table} WHERE ID > ? ORDER BY ID LIMIT ?`,
    [afterId, limit],
    { label: `read_${source}`, ...opts },
  );
  return rows.map((r) => ({ id: String(r.ID), text: String(r.T ?? '') }));
}
