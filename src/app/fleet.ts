import type { FleetConfig } from '../config';
import type { Logger } from '../telemetry/logger';
import type { LocalWarehouse } from '../warehouse/server';
import { createRedis, ensureRedis } from './redis';
import type { PrivateRedis } from './redis-server';
import { Releasers } from './releasers';
import { createCaches, startRole, type WorkerRole } from './roles';
import { createWarehouseClient, resolveWarehouse } from './warehouse';

export interface FleetOptions {
  roles: readonly WorkerRole[];
  /**
   * `fleet up`: start a private redis-server when none answers at REDIS_URL. Without it (worker
   * replicas) an unreachable Redis is waited for, as a Kubernetes pod should.
   */
  embeddedRedis: boolean;
  /** Allow starting the local warehouse when no Snowflake account or access URL is configured. */
  embeddedWarehouse: boolean;
  logger: Logger;
}

export interface RunningFleet {
  redisUrl: string;
  privateRedis?: PrivateRedis;
  warehouseUrl?: string;
  localWarehouse?: LocalWarehouse;
  releasers: Releasers;
  /** Releases everything in reverse order of creation. Idempotent. */
  close(): Promise<void>;
}

/** Builds the clients once and starts the requested roles; the entry point owns signals. */
export async function startFleet(config: FleetConfig, opts: FleetOptions): Promise<RunningFleet> {
  const releasers = new Releasers();
  const { logger } = opts;
  try {
    let redisSettings = config.redis;
    let privateRedis: PrivateRedis | undefined;
    if (opts.embeddedRedis) {
      const ensured = await ensureRedis(config.redis, logger);
      redisSettings = ensured.settings;
      privateRedis = ensured.started;
      if (privateRedis) releasers.add('private redis-server', () => privateRedis!.stop());
    }
    if (!opts.embeddedWarehouse && !config.snowflake.account && !config.snowflake.accessUrl) {
      throw new Error('no warehouse configured: set SNOWFLAKE_ACCOUNT (real Snowflake) or SNOWFLAKE_ACCESS_URL (e.g. a `fleet warehouse`), or use `fleet up` for the embedded local warehouse');
    }
    const { settings, local } = await resolveWarehouse(config, logger, releasers);
    const { pool, warehouse } = createWarehouseClient(config, settings, releasers, (e) => {
      if (!e.ok) logger.warn({ label: e.label, attempt: e.attempt, err: e.error?.message, code: e.error?.code }, 'warehouse call failed');
    });
    const redis = () => createRedis(redisSettings);
    const needsCache = opts.roles.some((r) => r === 'embeddings' || r === 'deals');
    const caches = needsCache ? createCaches(config, redis, releasers, logger) : undefined;
    for (const role of opts.roles) startRole(role, { config, logger, redis, pool, warehouse, releasers, caches });
    return {
      redisUrl: redisSettings.url,
      privateRedis,
      warehouseUrl: settings.accessUrl,
      localWarehouse: local,
      releasers,
      close: () => releasers.releaseAll(logger),
    };
  } catch (err) {
    await releasers.releaseAll(logger).catch(() => undefined);
    throw err;
  }
}
