import type { LocalWarehouse } from 'local-snowflake';
import type { FleetConfig, RedisSettings } from '../config';
import { readinessChecks, redisPing, startHealthServer } from '../http';
import type { PooledWarehouse, WarehouseCallEvent, WarehousePool } from '../pool';
import { isSessionGone } from '../pool/snowflake-connector';
import { type FleetMetrics, startTelemetry, tieredCacheStats } from '../telemetry';
import type { Logger } from '../telemetry/logger';
import { type DependencyLog, dependencyLog, isConnectionError } from '../telemetry/outage-log';
import { PoolAcquireTimeoutError, type WarehouseError } from '../warehouse/errors';
import type { SearchProcessor } from '../workers/search-processor';
import { startApiRole } from './api-role';
import { createCaches, type FleetCaches } from './caches';
import { loadLocalSnowflake } from './local-snowflake';
import { closeRedis, clusterSeedList, dropRedis, ensureRedis, type RedisClient, RedisConnections, redisEnvOf } from './redis';
import type { PrivateRedis } from './redis-server';
import { Releasers, ReleaseTimeoutError } from './releasers';
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
  /**
   * Called at once with the fleet's close (the one `RunningFleet.close` will be), so that a signal during
   * start-up - a role waiting for a Redis that is down - releases what was opened so far.
   */
  onClose?: (close: (opts?: CloseOptions) => Promise<void>) => void;
}

/** What `RunningFleet.close` is given by the signal handler. */
interface CloseOptions {
  /** Release everything within this many ms (see `Releasers.releaseAll`); default unbounded. */
  budgetMs?: number;
}

export interface RunningFleet {
  /** The Redis URL; for a Redis Cluster, its seed nodes and `(Redis Cluster)`. */
  redisUrl: string;
  /** What another process sets to reach this Redis: `REDIS_URL=…` or `REDIS_CLUSTER_NODES=…`. */
  redisEnv: string;
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
  redis: () => RedisClient;
  warehouse: PooledWarehouse;
  pool: WarehousePool;
  caches?: FleetCaches;
  /**
   * Releases everything in reverse order of creation, within `budgetMs`. With Redis down (before or during
   * the close) every Redis connection is dropped first: in-flight jobs cannot be completed in Redis, so they
   * are left to stalled-job recovery instead of holding the shutdown, and the close resolves (exit 0).
   * Idempotent.
   */
  close(opts?: CloseOptions): Promise<void>;
}

/**
 * A failure that says the warehouse is away (unreachable, refusing connections, sessions that cannot be
 * opened), as opposed to one it answered: a SQL error, an expired session (a new one will do), a pool whose
 * sessions are all busy with other calls (the warehouse was not asked). A call that ran past its own
 * deadline is a slow warehouse, not an absent one: it keeps its own line (the circuit breaker bounds how
 * many), so operators can tell the two apart.
 */
function isWarehouseOutage(err: unknown): boolean {
  const e = err as WarehouseError;
  if (typeof e?.transient !== 'boolean') return isConnectionError(err);
  if (e instanceof PoolAcquireTimeoutError) return !e.exhausted;
  if (e.code === 'FLEET_TIMEOUT') return false;
  return e.transient && !isSessionGone(e);
}

/**
 * What happens after each warehouse call: metrics, and the log. A failure the warehouse answered logs one
 * line each; an outage goes to the warehouse's dependency log (one line when it goes away, summaries while
 * it stays away, one line when a call succeeds again). A slow call is logged by the metrics' slow log
 * (`slow warehouse query: …`), once; this adds nothing for it.
 */
export function warehouseCallReporter(
  metrics: FleetMetrics,
  logger: Logger,
  outage: DependencyLog = dependencyLog(logger, { name: 'warehouse', isOutage: isWarehouseOutage }),
): (e: WarehouseCallEvent) => void {
  return (e) => {
    metrics.warehouseCall(e.label, e.durationMs, e.ok, e.error?.code, { attempt: e.attempt });
    if (e.ok) outage.recovered();
    else if (isWarehouseOutage(e.error)) outage.failed(e.error, { label: e.label, attempt: e.attempt });
    else logger.warn({ label: e.label, attempt: e.attempt, err: e.error?.message, code: e.error?.code }, 'warehouse call failed');
  };
}

/** Builds the clients once and starts the requested roles; the entry point owns signals. */
export async function startFleet(config: FleetConfig, opts: FleetOptions): Promise<RunningFleet> {
  const releasers = new Releasers();
  const { logger } = opts;
  const summaryEveryMs = config.logOutageSummaryMs;
  const outages = {
    redis: dependencyLog(logger, { name: 'redis', summaryEveryMs }),
    warehouse: dependencyLog(logger, { name: 'warehouse', summaryEveryMs, isOutage: isWarehouseOutage }),
  };
  releasers.add('outage logs', () => {
    for (const o of Object.values(outages)) o.close();
  });
  let connections: RedisConnections | undefined;
  const close = (closeOpts?: CloseOptions) => closeFleet(releasers, connections, logger, closeOpts);
  opts.onClose?.(close);
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
    const { pool, warehouse } = createWarehouseClient(
      config,
      settings,
      releasers,
      warehouseCallReporter(telemetry.metrics, logger, outages.warehouse),
      processRole,
    );
    telemetry.metrics.observePool(() => pool.stats());
    if (warehouse.cost) telemetry.metrics.observeCost(() => warehouse.cost!.totals(), config.cost.creditPriceUsd);
    connections = new RedisConnections(redisSettings, outages.redis);
    const redis = connections.create.bind(connections);
    const needsCache = opts.caches || opts.roles.some((r) => r === 'embeddings' || r === 'deals' || r === 'search');
    const caches = needsCache ? createCaches(config, redis, releasers, logger, summaryEveryMs) : undefined;
    if (caches) {
      telemetry.metrics.observeCache(() => [...tieredCacheStats('embeddings', caches.embeddings.stats()), ...tieredCacheStats('deals', caches.deals.stats())]);
    }
    const ctx: RoleContext = { config, logger, redis, redisLog: outages.redis, pool, warehouse, releasers, caches, metrics: telemetry.metrics };
    const started = opts.roles.map((role) => startRole(role, ctx));
    await Promise.all(started.map((r) => r.ready));
    const search = started.find((r) => r.search)?.search;

    // Readiness needs its own connection only where something serves /readyz (not `fleet index rebuild`).
    const readiness = () => {
      const probe = redis();
      releasers.add('readiness redis connection', () => closeRedis(probe), { force: () => dropRedis(probe) });
      return readinessChecks({
        // On a cluster: the master of the fleet's own slot, not a node picked at random.
        redis: redisPing(probe, { clusterKey: `${config.queuePrefix}:readyz` }),
        warehouse: () => warehouse.query('SELECT 1 AS X', [], { label: 'readiness', timeoutMs: 2_000 }),
      });
    };
    let apiUrl: string | undefined;
    let apiTokens: readonly string[] = [];
    let generatedToken = false;
    if (opts.api) {
      const started = await startApiRole({ config, logger, redis, redisLog: outages.redis, releasers, telemetry, readiness: readiness(), search, ...opts.api });
      apiUrl = started.api.url;
      apiTokens = started.tokens;
      generatedToken = started.generated;
    } else if (opts.health) {
      const health = await startHealthServer({ port: config.http.healthPort, readiness: readiness(), metrics: telemetry.metricsEndpoint, logger });
      releasers.add('health server', () => health.close());
    }
    return {
      redisUrl: redisSettings.cluster
        ? `${clusterSeedList(redisSettings.cluster)}  (Redis Cluster)`
        : redisSettings.sentinel
          ? `${clusterSeedList(redisSettings.sentinel)}  (Sentinel, master ${redisSettings.sentinel.master})`
          : redisSettings.url,
      redisEnv: redisEnvOf(redisSettings),
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
      close,
    };
  } catch (err) {
    // After a signal during start-up this is the signal handler's close, already running within its bound.
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Releases the fleet. Redis down - when the close begins or while it runs - means in-flight jobs can no
 * longer be completed in Redis and every QUIT would wait for a reconnect: every Redis connection is dropped
 * at once, the jobs are left to stalled-job recovery (their locks expire; another replica runs them), and
 * what that cuts short (connection errors, steps past their deadline) is expected, not a failed shutdown.
 */
function closeFleet(releasers: Releasers, connections: RedisConnections | undefined, logger: Logger, opts: CloseOptions = {}): Promise<void> {
  if (!connections) return releasers.releaseAll(logger, { budgetMs: opts.budgetMs });
  let dropped = false;
  const drop = () => {
    if (dropped) return;
    dropped = true;
    logger.warn('redis is down: dropping its connections; in-flight jobs are left to stalled-job recovery');
    connections.disconnectAll();
  };
  const stopWatching = connections.log.onDown(drop);
  if (connections.log.down) drop();
  const isExpected = (err: unknown) =>
    dropped &&
    (isConnectionError(err) || err instanceof ReleaseTimeoutError || (err instanceof AggregateError && err.errors.every((e) => isConnectionError(e))));
  return releasers.releaseAll(logger, { budgetMs: opts.budgetMs, isExpected }).finally(stopWatching);
}
