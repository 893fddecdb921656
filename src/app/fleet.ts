import type { Redis } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import type { FleetConfig, RedisSettings } from '../config';
import { readinessChecks, redisPing, startHealthServer } from '../http';
import type { PooledWarehouse, WarehouseCallEvent, WarehousePool } from '../pool';
import { type FleetMetrics, startTelemetry, tieredCacheStats } from '../telemetry';
import type { Logger } from '../telemetry/logger';
import type { SearchProcessor } from '../workers/search-processor';
import { startApiRole } from './api-role';
import { createCaches, type FleetCaches } from './caches';
import { loadLocalSnowflake } from './local-snowflake';
import { createRedis, ensureRedis } from './redis';
import type { PrivateRedis } from './redis-server';
import { Releasers } from './releasers';
import { type RoleContext, startRole, type WorkerRole } from './roles';
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
  /** Build the caches even if no role needs them (e.g. `fleet index rebuild`). */
  caches?: boolean;
  /** Serve the HTTP API in this process (`fleet api`, `fleet up`). */
  api?: { host?: string; generateToken?: boolean };
  /** Serve /healthz, /readyz and /metrics on HEALTH_PORT (worker-only processes). */
  health?: boolean;
  logger: Logger;
}

export interface RunningFleet {
  redisUrl: string;
  privateRedis?: PrivateRedis;
  warehouseUrl?: string;
  localWarehouse?: LocalWarehouse;
  releasers: Releasers;
  /** The HTTP API's URL and accepted tokens, when this process serves it. */
  apiUrl?: string;
  apiTokens: readonly string[];
  /** True when `fleet up` generated the token (FLEET_API_TOKENS unset). */
  generatedToken: boolean;
  /** The search role's processor, when this process runs it (for POST /v1/search). */
  search?: SearchProcessor;
  /** Creates a new connection to the fleet's Redis (the caller quits it). */
  redis: () => Redis;
  warehouse: PooledWarehouse;
  pool: WarehousePool;
  caches?: FleetCaches;
  /** Releases everything in reverse order of creation. Idempotent. */
  close(): Promise<void>;
}

/**
 * What happens after each warehouse call: metrics, and one log line for a failure. A slow call is logged
 * by the metrics' slow log (`slow warehouse query: …`), once; this adds nothing for it.
 */
export function warehouseCallReporter(metrics: FleetMetrics, logger: Logger): (e: WarehouseCallEvent) => void {
  return (e) => {
    metrics.warehouseCall(e.label, e.durationMs, e.ok, e.error?.code, { attempt: e.attempt });
    if (!e.ok) logger.warn({ label: e.label, attempt: e.attempt, err: e.error?.message, code: e.error?.code }, 'warehouse call failed');
  };
}

/** Builds the clients once and starts the requested roles; the entry point owns signals. */
export async function startFleet(config: FleetConfig, opts: FleetOptions): Promise<RunningFleet> {
  const releasers = new Releasers();
  const { logger } = opts;
  try {
    if (!config.snowflake.account && !config.snowflake.accessUrl) {
      if (!opts.embeddedWarehouse) {
        throw new Error(
          'no warehouse configured: set SNOWFLAKE_ACCOUNT (real Snowflake) or SNOWFLAKE_ACCESS_URL (e.g. a `fleet warehouse`), or use `fleet up` for the embedded local warehouse',
        );
      }
      // The embedded warehouse is a development dependency: say so before anything starts.
      loadLocalSnowflake();
    }
    let redisSettings: RedisSettings = config.redis;
    let privateRedis: PrivateRedis | undefined;
    if (opts.embeddedRedis) {
      const ensured = await ensureRedis(config.redis, logger);
      redisSettings = ensured.settings;
      privateRedis = ensured.started;
      if (privateRedis) releasers.add('private redis-server', () => privateRedis!.stop());
    }
    const processRole = opts.api ? ['api', ...opts.roles].join(',') : opts.roles.join(',') || 'cli';
    const telemetry = startTelemetry({
      role: processRole,
      otlpTracesUrl: config.telemetry.otlpTracesUrl,
      sampleRatio: config.telemetry.sampleRatio,
      slowThresholds: config.telemetry.slow,
      logger,
    });
    releasers.add('telemetry (flushes spans)', () => telemetry.shutdown());
    const { settings, local } = await resolveWarehouse(config, logger, releasers);
    const { pool, warehouse } = createWarehouseClient(config, settings, releasers, warehouseCallReporter(telemetry.metrics, logger), processRole);
    telemetry.metrics.observePool(() => pool.stats());
    if (warehouse.cost) telemetry.metrics.observeCost(() => warehouse.cost!.totals(), config.cost.creditPriceUsd);
    const redis = () => createRedis(redisSettings);
    const needsCache = opts.caches || opts.roles.some((r) => r === 'embeddings' || r === 'deals' || r === 'search');
    const caches = needsCache ? createCaches(config, redis, releasers, logger) : undefined;
    if (caches) {
      telemetry.metrics.observeCache(() => [...tieredCacheStats('embeddings', caches.embeddings.stats()), ...tieredCacheStats('deals', caches.deals.stats())]);
    }
    const ctx: RoleContext = { config, logger, redis, pool, warehouse, releasers, caches, metrics: telemetry.metrics };
    const started = opts.roles.map((role) => startRole(role, ctx));
    await Promise.all(started.map((r) => r.ready));
    const search = started.find((r) => r.search)?.search;

    // Readiness needs its own connection only where something serves /readyz (not `fleet index rebuild`).
    const readiness = () => {
      const probe = redis();
      releasers.add('readiness redis connection', () => probe.quit());
      return readinessChecks({
        redis: redisPing(probe),
        warehouse: () => warehouse.query('SELECT 1 AS X', [], { label: 'readiness', timeoutMs: 2_000 }),
      });
    };
    let apiUrl: string | undefined;
    let apiTokens: readonly string[] = [];
    let generatedToken = false;
    if (opts.api) {
      const started = await startApiRole({ config, logger, redis, releasers, telemetry, readiness: readiness(), search, ...opts.api });
      apiUrl = started.api.url;
      apiTokens = started.tokens;
      generatedToken = started.generated;
    } else if (opts.health) {
      const health = await startHealthServer({ port: config.http.healthPort, readiness: readiness(), metrics: telemetry.metricsEndpoint, logger });
      releasers.add('health server', () => health.close());
    }
    return {
      redisUrl: redisSettings.url,
      privateRedis,
      warehouseUrl: settings.accessUrl,
      localWarehouse: local,
      releasers,
      search,
      apiUrl,
      apiTokens,
      generatedToken,
      redis,
      warehouse,
      pool,
      caches,
      close: () => releasers.releaseAll(logger),
    };
  } catch (err) {
    await releasers.releaseAll(logger).catch(() => undefined);
    throw err;
  }
}
