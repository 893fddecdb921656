import { QUEUES, type QueueName } from '../contracts/queues';

/** What one tenant may do on one queue. */
export interface TenantPolicy {
  /** Share of the service while tenants compete (integer 1-1000): a tenant of weight 2 gets twice the slots of one of weight 1. */
  weight: number;
  /** Most jobs accepted and not yet finished (waiting, parked, running, retrying); past it, TenantLimitError `queued`. */
  maxQueued: number;
  /** Most jobs enqueued per second, averaged over `RATE_WINDOW_S` (a burst of that many seconds' worth passes); absent: no rate limit. */
  ratePerS?: number;
}

/** How the fair queues share their service between tenants (src/fairness/lanes.ts). */
export interface FairnessSettings {
  /** Off: plain FIFO, no per-tenant limits or counts in Redis. */
  enabled: boolean;
  /**
   * Jobs of one tenant (per unit of weight) held in a queue's FIFO wait list at once; the rest are parked and
   * moved up one by one as the tenant's jobs finish. Small keeps a newcomer close to the front; it never
   * limits throughput (idle workers take parked jobs). Default 64.
   */
  slots: number;
  /** The policy of a tenant not named in `tenants`. */
  defaults: TenantPolicy;
  /** Per-tenant overrides of `defaults`. */
  tenants: Readonly<Record<string, Partial<TenantPolicy>>>;
}

/** The window of the per-tenant rate limit: a tenant may enqueue `ratePerS x RATE_WINDOW_S` jobs at once. */
export const RATE_WINDOW_S = 10;

export const DEFAULT_FAIRNESS: FairnessSettings = Object.freeze({
  enabled: true,
  slots: 64,
  defaults: Object.freeze({ weight: 1, maxQueued: 100_000 }),
  tenants: Object.freeze({}),
});

/**
 * The queues served fairly: the batch queues, where one tenant's bulk enqueue would otherwise hold every
 * other tenant's jobs behind it. Workflows (BullMQ flows add their children themselves) and searches (answered
 * within a request) keep FIFO order; their jobs still carry and report their tenant.
 */
export const FAIR_QUEUES: readonly QueueName[] = Object.freeze([QUEUES.embeddings, QUEUES.deals]);

export const isFairQueue = (queue: string): boolean => (FAIR_QUEUES as readonly string[]).includes(queue);

/** `settings` completed with the defaults, checked (a RangeError names the bad field). */
export function fairnessSettings(settings: Partial<FairnessSettings> | undefined): FairnessSettings {
  const s: FairnessSettings = {
    enabled: settings?.enabled ?? DEFAULT_FAIRNESS.enabled,
    slots: settings?.slots ?? DEFAULT_FAIRNESS.slots,
    defaults: { ...DEFAULT_FAIRNESS.defaults, ...settings?.defaults },
    tenants: settings?.tenants ?? {},
  };
  const int = (name: string, v: unknown, min: number, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw new RangeError(`fairness: \`${name}\` must be an integer from ${min} to ${max}, got ${String(v)}`);
  };
  const policy = (name: string, p: Partial<TenantPolicy>) => {
    if (p.weight !== undefined) int(`${name}.weight`, p.weight, 1, 1000);
    if (p.maxQueued !== undefined) int(`${name}.maxQueued`, p.maxQueued, 1, 100_000_000);
    if (p.ratePerS !== undefined && (typeof p.ratePerS !== 'number' || !(p.ratePerS > 0) || p.ratePerS > 1_000_000))
      throw new RangeError(`fairness: \`${name}.ratePerS\` must be a number of jobs per second in (0, 1000000], got ${String(p.ratePerS)}`);
  };
  int('slots', s.slots, 1, 100_000);
  policy('defaults', s.defaults);
  for (const [tenant, p] of Object.entries(s.tenants)) policy(`tenants.${tenant}`, p);
  return s;
}

/** The policy `tenant` gets: its overrides over the defaults. */
export function policyOf(settings: FairnessSettings, tenant: string): TenantPolicy {
  const own = Object.hasOwn(settings.tenants, tenant) ? settings.tenants[tenant] : undefined;
  return own ? { ...settings.defaults, ...own } : settings.defaults;
}

/**
 * The settings each shard of a queue split in `shards` applies: a shard's lanes know only its own jobs, and jobs
 * spread evenly over the shards (by id), so each enforces its share of a tenant's limits (`maxQueued` and
 * `ratePerS` divided by the shards, rounded up). Weights and slots stay: every shard is served fairly on its own.
 */
export function shardShare(settings: FairnessSettings, shards: number): FairnessSettings {
  if (shards <= 1) return settings;
  const share = (p: Partial<TenantPolicy>): Partial<TenantPolicy> => ({
    ...p,
    ...(p.maxQueued !== undefined ? { maxQueued: Math.ceil(p.maxQueued / shards) } : {}),
    ...(p.ratePerS !== undefined ? { ratePerS: p.ratePerS / shards } : {}),
  });
  return {
    ...settings,
    defaults: share(settings.defaults) as TenantPolicy,
    tenants: Object.fromEntries(Object.entries(settings.tenants).map(([t, p]) => [t, share(p)])),
  };
}
