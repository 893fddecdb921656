/**
 * Job attempts, backoff and retention the fleet uses unless configured otherwise: the defaults of
 * `JOB_*` (src/config/variables.ts), of the library's `DEFAULT_JOB_OPTIONS` (which cannot read the
 * environment) and of `runWorker`. One place, so the three cannot drift apart.
 */
export const JOB_DEFAULTS = {
  attempts: 5,
  /** First retry delay; doubles per attempt. */
  backoffMs: 1_000,
  keepCompletedS: 86_400,
  keepCompletedCount: 50_000,
  keepFailedS: 7 * 86_400,
} as const;
