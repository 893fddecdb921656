import type { QueryOptions, Warehouse } from '../types';
import { placeholders } from './placeholders';

export interface TextAnalysis {
  sentiment: number;
  summary: string;
}

const TABLES = {
  calls: { table: 'GONG_CALLS', text: 'TRANSCRIPT' },
  deals: { table: 'DEALS', text: 'NOTES' },
} as const;

/**
 * Sentiment and summary for many rows in ONE statement, computed by the warehouse
 * (`SNOWFLAKE.CORTEX.SENTIMENT` / `SUMMARIZE`; the local warehouse provides deterministic stand-ins).
 */
export async function analyzeTexts(
  warehouse: Warehouse,
  kind: keyof typeof TABLES,
  ids: readonly string[],
  opts: QueryOptions = {},
): Promise<Map<string, TextAnalysis>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const { table, text } = TABLES[kind];
  const sql =
    `SELECT ID, SNOWFLAKE.CORTEX.SENTIMENT(${text}) AS SENTIMENT, SNOWFLAKE.CORTEX.SUMMARIZE(${text}) AS SUMMARY, LENGTH(${text}) AS INPUT_CHARS ` +
    `FROM ${table} WHERE ID IN (${placeholders(unique.length)})`;
  // The texts stay in the warehouse: their lengths come back so the Cortex input can be costed.
  const cortex = [
    { function: 'SENTIMENT', charsColumn: 'INPUT_CHARS' },
    { function: 'SUMMARIZE', charsColumn: 'INPUT_CHARS' },
  ];
  const rows = await warehouse.query<{ ID: unknown; SENTIMENT: unknown; SUMMARY: unknown }>(sql, unique, { label: `analyze_${kind}`, cortex, ...opts });
  return new Map(rows.map((r) => [String(r.ID), { sentiment: Number(r.SENTIMENT), summary: String(r.SUMMARY ?? '') }]));
}
