import type { AmountBand, Deal, DealFigures } from '../contracts/deals';
import type { DealRow } from '../warehouse/queries/get-deals';

const DAY_MS = 86_400_000;
const CLOSED_STAGES = new Set(['closedwon', 'closedlost', 'closed won', 'closed lost', 'won', 'lost']);

function iso(v: unknown): string | null {
  if (v === null || v === undefined || v === '') return null;
  // The driver returns Snowflake timestamps as Date-like objects (SfTimestamp) or strings.
  const d = v instanceof Date ? v : new Date(typeof v === 'object' && 'toJSON' in (v as object) ? (v as { toJSON(): string }).toJSON() : String(v));
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

const daysBetween = (from: string | null, to: number) => (from === null ? null : Math.floor((to - Date.parse(from)) / DAY_MS));

/** Maps a `DEALS` row to the public `Deal` shape. */
export function toDeal(row: DealRow): Deal {
  return {
    id: String(row.ID),
    name: String(row.NAME ?? ''),
    stage: String(row.STAGE ?? ''),
    amount: num(row.AMOUNT),
    owner: row.OWNER === null || row.OWNER === undefined ? null : String(row.OWNER),
    company: row.COMPANY === null || row.COMPANY === undefined ? null : String(row.COMPANY),
    notes: row.NOTES === null || row.NOTES === undefined ? null : String(row.NOTES),
    createdAt: iso(row.CREATED_AT),
    stageChangedAt: iso(row.STAGE_CHANGED_AT),
    updatedAt: iso(row.UPDATED_AT),
    lastActivityAt: iso(row.LAST_ACTIVITY_AT),
    closeDate: iso(row.CLOSE_DATE),
  };
}

function amountBand(amount: number | null): AmountBand {
  if (amount === null) return 'unknown';
  if (amount < 10_000) return 'small';
  if (amount < 50_000) return 'mid';
  if (amount < 250_000) return 'large';
  return 'enterprise';
}

/** Figures derived from a deal at time `now` (ms since epoch). */
export function dealFigures(deal: Deal, now: number): DealFigures {
  const isOpen = !CLOSED_STAGES.has(deal.stage.toLowerCase());
  const lastActivityAgeDays = daysBetween(deal.lastActivityAt ?? deal.updatedAt, now);
  const daysToClose = deal.closeDate === null ? null : Math.ceil((Date.parse(deal.closeDate) - now) / DAY_MS);
  return {
    daysInStage: daysBetween(deal.stageChangedAt ?? deal.createdAt, now),
    amountBand: amountBand(deal.amount),
    lastActivityAgeDays,
    daysToClose,
    stale: isOpen && ((lastActivityAgeDays ?? 0) >= 30 || (daysToClose !== null && daysToClose < 0)),
    isOpen,
  };
}
