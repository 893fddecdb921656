/**
 * The fleet's public client library: enqueue work from another Node service.
 *
 * @example
 *   import { createProducer, decodeVector } from 'warehouse-fleet';
 */
// Invalidating cached deal rows after a CRM update needs only Redis (no cache instance, no warehouse).
export { type DealInvalidation, type InvalidateDealsOptions, invalidateDeals } from './cache/invalidate-deals';
export * from './contracts';
// Fairness between tenants: the settings producers take, and each tenant's counts on a fair queue.
export { DEFAULT_FAIRNESS, type FairnessSettings, type TenantCounts, TenantLanes, type TenantPolicy } from './fairness';
export * from './producers';
