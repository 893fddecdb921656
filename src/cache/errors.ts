/**
 * The L2 tier (Redis) was not asked or did not answer in time: the circuit is open, the client is not
 * connected, or the call passed its deadline. Reads never surface it (they fall back to L1 and the
 * loader); explicit writes (`setMany`, `delete`, `clear`) reject with it, because then other replicas
 * were not told and may serve the old value until its L1 TTL.
 */
export class CacheUnavailableError extends Error {
  constructor(
    readonly op: string,
    readonly reason: 'circuit-open' | 'not-connected' | 'timeout' | 'error',
    cause?: unknown,
  ) {
    super(`cache L2 ${op} failed: ${reason}${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });
    this.name = 'CacheUnavailableError';
  }
}

/** The cache was used after `close()`. A programming error in the caller's shutdown order. */
export class CacheClosedError extends Error {
  constructor(readonly cacheName: string) {
    super(`cache ${cacheName} is closed`);
    this.name = 'CacheClosedError';
  }
}

/** The loader did not return an entry for a key it was asked for. Returned (not thrown) for that key. */
export class MissingLoadResultError extends Error {
  constructor(readonly key: string) {
    super(`loader returned no value for key ${JSON.stringify(key)}`);
    this.name = 'MissingLoadResultError';
  }
}
