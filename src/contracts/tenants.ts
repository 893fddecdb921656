import { IndexItemId } from './embedding';

/**
 * Who a job is for: the service or team that enqueued it. Jobs of different tenants are served fairly
 * (src/fairness) and counted per tenant; the same rule as an index target's `tenant` (1-128 letters,
 * digits or `_ . : / -`, starting with a letter or digit), so one name serves both.
 */
export const Tenant = IndexItemId;

/** The tenant of a job that names none: every such job shares it. */
export const DEFAULT_TENANT = 'default';

/** The tenant a job's data names, or the shared default. */
export function tenantOfData(data: unknown): string {
  const tenant = (data as { tenant?: unknown } | null | undefined)?.tenant;
  return typeof tenant === 'string' && tenant !== '' ? tenant : DEFAULT_TENANT;
}
