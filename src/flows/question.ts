import type { Source } from '../contracts/workflows';

/**
 * What the collectors filter on, derived deterministically from the question. Identical filters from
 * concurrent workflows are collected once (the collectors' coalescer keys on `filterKey`).
 */
export interface CollectFilters {
  /** ILIKE pattern for the strongest keyword, `%` for none. Bound, never spliced. */
  pattern: string;
  keywords: string[];
  minAmount: number;
  /** Inclusive window (ISO dates) for close dates / activity. */
  from: string;
  to: string;
  limit: number;
}

const STOP = new Set(
  'which what when where who whom whose why how are is was were be been the this that these those and or but for with from into onto over under about this quarter month year week deals deal at risk risky and them their there they our your you why show list give tell me us of to in on by a an it its do does did has have had will would should could can may might all any some most more less than then also only just not no yes'.split(
    ' ',
  ),
);

function quarterWindow(asOf: Date): { from: string; to: string } {
  const q = Math.floor(asOf.getUTCMonth() / 3);
  const from = new Date(Date.UTC(asOf.getUTCFullYear(), q * 3, 1));
  const to = new Date(Date.UTC(asOf.getUTCFullYear(), q * 3 + 3, 0));
  return { from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) };
}

/** Parses a question into filters: segment (enterprise → amount ≥ 250k), period, keywords. */
export function filtersFor(question: string, asOf: Date): CollectFilters {
  const lower = question.toLowerCase();
  const words = lower.match(/[\p{L}\p{N}][\p{L}\p{N}-]{2,}/gu) ?? [];
  const keywords = [...new Set(words.filter((w) => !STOP.has(w) && w.length >= 4 && !['enterprise', 'mid-market', 'smb'].includes(w)))].slice(0, 5);
  const minAmount = /\benterprise\b/.test(lower) ? 250_000 : /\bmid-?market\b/.test(lower) ? 50_000 : 0;
  let window: { from: string; to: string };
  if (/\bthis quarter\b|\bquarter\b/.test(lower)) window = quarterWindow(asOf);
  else if (/\bthis month\b/.test(lower)) {
    window = {
      from: new Date(Date.UTC(asOf.getUTCFullYear(), asOf.getUTCMonth(), 1)).toISOString().slice(0, 10),
      to: new Date(Date.UTC(asOf.getUTCFullYear(), asOf.getUTCMonth() + 1, 0)).toISOString().slice(0, 10),
    };
  } else {
    window = {
      from: new Date(asOf.getTime() - 365 * 86_400_000).toISOString().slice(0, 10),
      to: new Date(asOf.getTime() + 365 * 86_400_000).toISOString().slice(0, 10),
    };
  }
  return { pattern: keywords.length ? `%${keywords[0]}%` : '%', keywords, minAmount, ...window, limit: 50 };
}

/** The coalescing key of one collector request: identical requests share one load. */
export function filterKey(source: Source, f: CollectFilters): string {
  return JSON.stringify([source, f.pattern, f.keywords, f.minAmount, f.from, f.to, f.limit]);
}
