import type { QueryOptions, Warehouse } from '../types';
import { placeholders } from './placeholders';

/** A deal row as stored in `DEALS` (HubSpot-like). Dates are ISO strings or Date objects from the driver. */
export interface DealRow {
  ID: string;
  NAME: string;
  STAGE: string;
  AMOUNT: number | string | null;
  OWNER: string | null;
  COMPANY: string | null;
  NOTES: string | null;
  CREATED_AT: unknown;
  STAGE_CHANGED_AT: unknown;
  UPDATED_AT: unknown;
  LAST_ACTIVITY_AT: unknown;
  CLOSE_DATE: unknown;
}

/**
 * Reads many deals with ONE `WHERE ID IN (?, ?, ...)` statement; every id is a bound parameter.
 * Ids that do not exist are simply absent from the returned map.
 */
export async function getDeals(warehouse: Warehouse, ids: readonly string[], opts: QueryOptions = {}): Promise<Map<string, DealRow>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const sql =
    'SELECT ID, NAME, STAGE, AMOUNT, OWNER, COMPANY, NOTES, CREATED_AT, STAGE_CHANGED_AT, UPDATED_AT, LAST_ACTIVITY_AT, CLOSE_DATE ' +
    `FROM DEALS WHERE ID IN (${placeholders(unique.length)})`;
  const rows = await warehouse.query<DealRow & Record<string, unknown>>(sql, unique, { label: 'get_deals', ...opts });
  return new Map(rows.map((r) => [String(r.ID), r]));
}
