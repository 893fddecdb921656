import { z } from 'zod';
import type { BatchRef } from './embedding';
import { Tenant } from './tenants';

export const MAX_DEAL_IDS = 1_000;

export const DealId = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, _ or -, starting with a letter or digit');

/** 1-1,000 distinct deal ids: what a `deals` job and a deal-cache invalidation accept. */
const DealIdList = z
  .array(DealId, { error: 'must be an array of deal ids' })
  .min(1, 'must contain at least one id')
  .max(MAX_DEAL_IDS, `must contain at most ${MAX_DEAL_IDS} ids`)
  .superRefine((ids, ctx) => {
    const seen = new Set<string>();
    ids.forEach((id, i) => {
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate id ${JSON.stringify(id)}` });
      seen.add(id);
    });
  });

/** Payload of a `deals` job: insights for up to 1,000 distinct deal ids. */
export const DealBatchJobData = z.strictObject({
  dealIds: DealIdList,
  /** Who the job is for (absent: the shared default tenant). */
  tenant: Tenant.optional(),
  trace: z.record(z.string(), z.string()).optional(),
});
export type DealBatchJobData = z.output<typeof DealBatchJobData>;

/**
 * Deals whose cached rows must go (after a CRM update): `invalidateDeals`, `POST /v1/deals/invalidate` and
 * `fleet deals invalidate` all accept exactly this.
 */
export const DealInvalidationRequest = z.strictObject({
  dealIds: DealIdList.meta({ description: `1-${MAX_DEAL_IDS} distinct deal ids whose cached rows are dropped on every replica.`, uniqueItems: true }),
});
export type DealInvalidationRequest = z.output<typeof DealInvalidationRequest>;

export type AmountBand = 'small' | 'mid' | 'large' | 'enterprise' | 'unknown';

/** The deal as stored, in camelCase, with dates as ISO strings. */
export interface Deal {
  id: string;
  name: string;
  stage: string;
  amount: number | null;
  owner: string | null;
  company: string | null;
  notes: string | null;
  createdAt: string | null;
  stageChangedAt: string | null;
  updatedAt: string | null;
  lastActivityAt: string | null;
  closeDate: string | null;
}

/** Figures derived from one deal row at the time the job ran. */
export interface DealFigures {
  daysInStage: number | null;
  amountBand: AmountBand;
  lastActivityAgeDays: number | null;
  daysToClose: number | null;
  /** No activity for 30+ days on an open deal, or past its close date. */
  stale: boolean;
  isOpen: boolean;
}

export type DealInsight = { id: string; found: true; deal: Deal; figures: DealFigures } | { id: string; found: false; error: 'not found' };

/** Result of a `deals` job: one entry per requested id, in request order. */
export interface DealInsightsResult {
  requested: number;
  found: number;
  deals: DealInsight[];
  /** The batch calls that served this job (a job's ids may span several). */
  batches: BatchRef[];
  /** Ids answered from the cache. */
  cached?: number;
}
