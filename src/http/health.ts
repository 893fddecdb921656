import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { withDeadline } from '../resilience';
import type { MetricsEndpoint } from '../telemetry/prometheus';
import { loadFastify } from './fastify';

/** Readiness checks by name: true when that dependency answers. */
export type ReadinessCheck = () => Promise<Record<string, boolean>>;

export interface HealthRoutesOptions {
  /** Checks run by `GET /readyz`; without it /readyz answers like /healthz. */
  readiness?: ReadinessCheck;
  /** Served at `GET /metrics` when given. */
  metrics?: MetricsEndpoint;
  /** Deadline of the whole readiness check. Default 3,000 ms (Kubernetes' default probe timeout is 1 s per try; keep the probe's timeoutSeconds above this or lower it). */
  readinessTimeoutMs?: number;
}

/**
 * Combines named checks into one ReadinessCheck: each passes when it resolves to anything but `false`
 * within `timeoutMs`; a throw or a timeout fails it. Checks run in parallel.
 *
 * @example
 *   readiness: readinessChecks({
 *     redis: redisPing(connection),
 *     warehouse: () => warehouse.query('SELECT 1', [], { label: 'readiness', timeoutMs: 2000 }),
 *   })
 */
export function readinessChecks(checks: Record<string, () => Promise<unknown>>, opts: { timeoutMs?: number } = {}): ReadinessCheck {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const entries = Object.entries(checks);
  if (entries.length === 0) throw new RangeError('readinessChecks: give at least one check');
  return async () => {
    const results = await Promise.all(
      entries.map(async ([name, check]) => {
        try {
          return [name, (await withDeadline(Promise.resolve().then(check), timeoutMs, name)) !== false] as const;
        } catch {
          return [name, false] as const;
        }
      }),
    );
    return Object.fromEntries(results);
  };
}

/** The part of an ioredis client the Redis check uses. */
export interface RedisPingable {
  readonly status: string;
  ping(): Promise<string>;
  /** True for a Redis Cluster client. */
  readonly isCluster?: boolean;
  exists?(key: string): Promise<number>;
}

/**
 * A check that passes when `redis` is connected and answers PING. A client that is not connected fails
 * at once (its PING would wait in the offline queue for a reconnect). On a Redis Cluster a PING goes to
 * whichever node the client picks, so with `clusterKey` the check asks the master of that key's slot
 * instead (EXISTS, routed by slot): give a key under the fleet's hash tag, whose master holds the index
 * log, the flows and the cache.
 */
export function redisPing(redis: RedisPingable, opts: { clusterKey?: string } = {}): () => Promise<boolean> {
  const { clusterKey } = opts;
  if (redis.isCluster === true && clusterKey !== undefined && redis.exists) {
    const exists = redis.exists.bind(redis);
    return async () => redis.status === 'ready' && typeof (await exists(clusterKey)) === 'number';
  }
  return async () => redis.status === 'ready' && (await redis.ping()) === 'PONG';
}

/**
 * Registers `GET /healthz` (200 while the event loop runs), `GET /readyz` (200 when every check passes,
 * 503 naming the failed ones) and `GET /metrics` (when a MetricsEndpoint is given). No authentication:
 * probes and Prometheus reach them inside the cluster; they expose no job data.
 */
export function registerHealthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): void {
  const timeoutMs = opts.readinessTimeoutMs ?? 3_000;
  const statusSchema = { tags: ['health'], security: [] as { [label: string]: string[] }[] };
  app.get('/healthz', { schema: { ...statusSchema, summary: 'Liveness: 200 while the process runs' } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { ...statusSchema, summary: 'Readiness: 200 when Redis and the warehouse answer, else 503 naming the failed checks' } },
    async (_req, reply) => {
      if (!opts.readiness) return { status: 'ready', checks: {} };
      let checks: Record<string, boolean>;
      try {
        checks = await withDeadline(opts.readiness(), timeoutMs, 'readiness');
      } catch (err) {
        reply.code(503);
        return { status: 'not ready', checks: {}, failed: [], error: (err as Error).message };
      }
      const failed = Object.entries(checks)
        .filter(([, ok]) => !ok)
        .map(([name]) => name);
      if (failed.length) reply.code(503);
      return failed.length ? { status: 'not ready', checks, failed } : { status: 'ready', checks };
    },
  );
  if (opts.metrics) {
    const metrics = opts.metrics;
    app.get('/metrics', { schema: { ...statusSchema, summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
      const body = await metrics.render();
      reply.header('content-type', metrics.contentType);
      return body;
    });
  }
}

export interface HealthServerOptions extends HealthRoutesOptions {
  /** Port to listen on (0 = any free port). Required. */
  port: number;
  /** Interface to bind. Default `0.0.0.0` (probes come from the kubelet, not loopback). */
  host?: string;
  logger?: Logger;
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:9464` */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and closes the server. Idempotent. */
  close(): Promise<void>;
}

/**
 * A small server for worker-only processes: /healthz, /readyz and /metrics on one port.
 *
 * @example
 *   const health = await startHealthServer({ port: 9464, readiness, metrics: telemetry.metricsEndpoint });
 *   releasers.add('health server', () => health.close());
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<RunningServer> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65_535) {
    throw new RangeError(`startHealthServer: option \`port\` must be an integer from 0 to 65535, got ${String(opts.port)}`);
  }
  const { fastify, LogController } = loadFastify();
  const app = fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) });
  registerHealthRoutes(app, opts);
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}; this server serves /healthz, /readyz and /metrics` } });
  });
  return listen(app, opts.port, opts.host ?? '0.0.0.0', opts.logger, 'health server');
}

/** Listens and returns `{ url, port, close }`; close is idempotent. */
export async function listen(app: FastifyInstance, port: number, host: string, logger: Logger | undefined, what: string): Promise<RunningServer> {
  await app.listen({ port, host });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${actual}`;
  logger?.info({ url }, `${what} listening`);
  let closing: Promise<void> | undefined;
  return {
    url,
    port: actual,
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
