import { z } from 'zod';
import { JOB_DEFAULTS } from '../contracts/job-defaults';
import { parseShardCounts, parseShardSelection } from '../contracts/shards';
import { CORTEX_CREDITS_PER_MTOKENS, CORTEX_PRICE_LIST, WAREHOUSE_CREDITS_PER_HOUR, type WarehouseSize } from './prices';

/** The login methods the fleet offers (snowflake-sdk 3.3 authenticator names). */
const AUTHENTICATORS = ['SNOWFLAKE', 'SNOWFLAKE_JWT', 'PROGRAMMATIC_ACCESS_TOKEN', 'OAUTH', 'OAUTH_CLIENT_CREDENTIALS'] as const;
export type Authenticator = (typeof AUTHENTICATORS)[number];

/**
 * Every environment variable the fleet reads, in one table. `loadConfig` is the only reader of the
 * environment; the configuration table (docs/configuration.md) and the Kubernetes manifest checks are derived from
 * this list, so a variable that is not here does not exist.
 */
export interface VariableSpec {
  /** Which part of the fleet the variable configures (groups the configuration table). */
  readonly group: string;
  /** Default as the user would write it in the environment; undefined = no default (optional or required). */
  readonly default?: string;
  /** True when the fleet cannot start without it in the stated situation (documented in `description`). */
  readonly required?: boolean;
  /** Never logged or printed; in Kubernetes it comes from a Secret. */
  readonly secret?: boolean;
  readonly description: string;
  /** Parses the raw string (after the default is applied). */
  readonly schema: z.ZodType;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const ms = (min = 0, max = 24 * 3600_000) => int(min, max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL with scheme ${protocols.join(' or ')}`,
  );
const optionalString = z.string().min(1).optional();

/** A schema from a parser that throws a RangeError naming the problem (the shard settings). */
const parsedBy = <T>(parse: (v: string) => T) =>
  z
    .string()
    .transform((v, ctx) => {
      try {
        return parse(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional();

/** One seed of REDIS_CLUSTER_NODES: `host:port`, `[v6]:port`, or the same after `redis://` / `rediss://`. */
const CLUSTER_SEED = /^(?:(rediss?):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})\/?$/;

/** REDIS_CLUSTER_NODES and REDIS_SENTINELS: comma-separated seeds, parsed into hosts, ports and whether they speak TLS. */
const seedNodes = z
  .string()
  .transform((v, ctx) => {
    const seeds = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const nodes: { host: string; port: number }[] = [];
    const schemes = new Set<string>();
    for (const seed of seeds) {
      const m = CLUSTER_SEED.exec(seed);
      const port = Number(m?.[3]);
      if (!m || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(seed)} is not host:port (or redis://host:port, rediss://host:port)` });
        continue;
      }
      schemes.add(m[1] ?? 'redis');
      nodes.push({ host: m[2].replace(/^\[|\]$/g, ''), port });
    }
    if (seeds.length === 0) ctx.addIssue({ code: 'custom', message: 'names no node' });
    if (schemes.size > 1) ctx.addIssue({ code: 'custom', message: 'mixes redis:// and rediss:// seeds: TLS is on for every node or for none' });
    return nodes.length && schemes.size === 1 ? { nodes, tls: schemes.has('rediss') } : z.NEVER;
  })
  .optional();

export const VARIABLES = {
  // --- process -------------------------------------------------------------------------------
  LOG_LEVEL: {
    group: 'process',
    default: 'info',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    description: 'pino log level for structured JSON logs.',
  },
  FLEET_SHUTDOWN_TIMEOUT_MS: {
    group: 'process',
    default: '10000',
    schema: ms(1000, 600_000),
    description:
      'Bound of the graceful close after SIGTERM/SIGINT: in-flight jobs finish, everything is released, the process exits 0 within it - also with Redis down (in-flight jobs are then left to stalled-job recovery). Keep it below Kubernetes terminationGracePeriodSeconds. A second signal forces exit.',
  },
  LOG_OUTAGE_SUMMARY_MS: {
    group: 'process',
    default: '30000',
    schema: ms(1000, 3600_000),
    description:
      'While Redis, the warehouse or the cache L2 stays unavailable: at most one summary line per this interval, with the number of errors not logged (one line when it goes away, one when it returns).',
  },
  // --- http api and health -------------------------------------------------------------------
  PORT: { group: 'http', default: '3000', schema: int(0, 65535), description: 'Port of the HTTP API (`fleet api`, `fleet up`).' },
  FLEET_API_HOST: { group: 'http', default: '0.0.0.0', schema: z.string().min(1), description: 'Interface the API binds (`fleet up` binds 127.0.0.1).' },
  FLEET_API_TOKENS: {
    group: 'http',
    secret: true,
    schema: z
      .string()
      .regex(/^[^\s,]{16,}(,[^\s,]{16,})*$/, 'comma-separated tokens of at least 16 characters, no spaces')
      .optional(),
    description:
      'Bearer tokens accepted by the API and the Bull Board (compared in constant time). Required by `fleet api`; `fleet up` generates and prints one when unset.',
  },
  FLEET_BOARD_ADMIN_USER: { group: 'http', schema: optionalString, description: 'Bull Board admin login (HTTP Basic) for browsers; API tokens work too.' },
  FLEET_BOARD_ADMIN_PASSWORD: {
    group: 'http',
    secret: true,
    schema: z.string().min(8, 'at least 8 characters').optional(),
    description: 'Password of the Bull Board admin login.',
  },
  FLEET_BOARD_VIEWER_USER: {
    group: 'http',
    schema: optionalString,
    description: 'Read-only Bull Board login (sees /admin/queues-readonly; cannot retry, remove or promote jobs).',
  },
  FLEET_BOARD_VIEWER_PASSWORD: {
    group: 'http',
    secret: true,
    schema: z.string().min(8, 'at least 8 characters').optional(),
    description: 'Password of the read-only Bull Board login.',
  },
  FLEET_API_BODY_LIMIT_BYTES: {
    group: 'http',
    default: '1048576',
    schema: int(1024, 64 * 1024 * 1024),
    description: 'Largest request body; larger ones get 413.',
  },
  FLEET_API_MAX_BACKLOG: {
    group: 'http',
    default: '100000',
    schema: int(1, 100_000_000),
    description: 'Per-queue backlog (waiting + prioritized jobs) above which enqueues get 429 with Retry-After.',
  },
  PRODUCER_BUFFER_MAX_JOBS: {
    group: 'http',
    default: '10000',
    schema: int(0, 10_000_000),
    description:
      'Enqueues the API process holds in memory while Redis is unreachable (answered 202 with `buffered: true`, sent in order when it is back); past it, 503. 0 turns buffering off (503 at once).',
  },
  PRODUCER_BUFFER_MAX_BYTES: {
    group: 'http',
    default: '33554432',
    schema: int(1024, 4 * 1024 * 1024 * 1024),
    description: "Payload bytes (JSON) the API process's producer holds in memory while Redis is unreachable; past it, 503.",
  },
  FLEET_API_MAX_WAIT_MS: {
    group: 'http',
    default: '30000',
    schema: ms(0, 600_000),
    description: 'Largest `?waitMs=` a client may ask for (wait for the result in the request).',
  },
  HEALTH_PORT: {
    group: 'http',
    default: '9464',
    schema: int(0, 65535),
    description: 'Worker-only processes serve /healthz, /readyz and /metrics on this port.',
  },
  // --- telemetry ---------------------------------------------------------------------------
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    group: 'telemetry',
    schema: url(['http:', 'https:']).optional(),
    description: 'OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`); unset: spans get ids (in logs and jobs) but are not exported.',
  },
  TRACE_SAMPLE_RATIO: { group: 'telemetry', default: '1', schema: z.coerce.number().min(0).max(1), description: 'Share of new traces sampled, 0-1.' },
  SLOW_WAREHOUSE_QUERY_MS: {
    group: 'telemetry',
    default: '100',
    schema: ms(1, 600_000),
    description: 'A warehouse call slower than this is logged as slow (and alerted on).',
  },
  SLOW_JOB_MS: { group: 'telemetry', default: '200', schema: ms(1, 600_000), description: 'A job (agent) slower than this is logged as slow.' },
  SLOW_API_RESPONSE_MS: { group: 'telemetry', default: '500', schema: ms(1, 600_000), description: 'An API response slower than this is logged as slow.' },
  // --- redis ---------------------------------------------------------------------------------
  REDIS_URL: {
    group: 'redis',
    default: 'redis://127.0.0.1:6379',
    schema: url(['redis:', 'rediss:']),
    description:
      'Redis for queues and the L2 cache (one server; for a Redis Cluster set REDIS_CLUSTER_NODES instead). `rediss://` turns on TLS. `fleet up` starts a private redis-server when nothing answers here.',
  },
  REDIS_CLUSTER_NODES: {
    group: 'redis',
    schema: seedNodes,
    description:
      'A Redis Cluster instead of one Redis: comma-separated seed nodes, `host:port,host:port` (any few masters or replicas; the rest is discovered). `rediss://host:port` seeds turn on TLS for every node. Set it instead of REDIS_URL; REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS_CA_FILE apply to every node. FLEET_QUEUE_PREFIX and CACHE_KEY_PREFIX must then hold a hash tag (`{…}`); CACHE_KEY_PREFIX defaults to `{fleet}:cache` on a cluster. Unsharded, every key shares the `{fleet}` slot and one master carries the fleet; FLEET_QUEUE_SHARDS spreads the batch queues over the masters (docs/operations.md, Sharded queues).',
  },
  REDIS_SENTINELS: {
    group: 'redis',
    schema: seedNodes,
    description:
      'Redis Sentinel instead of one fixed address: comma-separated sentinels, `host:port,host:port`; the fleet asks them for the primary of REDIS_SENTINEL_MASTER and follows it through a failover. `rediss://` sentinels turn on TLS to the sentinels and the primary. Set it instead of REDIS_URL and REDIS_CLUSTER_NODES; REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS_CA_FILE apply to the primary (the CA file to the sentinels too) (docs/operations.md, Redis topologies).',
  },
  REDIS_SENTINEL_MASTER: {
    group: 'redis',
    default: 'mymaster',
    schema: z.string().min(1).max(256),
    description: 'With REDIS_SENTINELS: the name of the master group the sentinels monitor (`sentinel monitor <name> …`).',
  },
  REDIS_SENTINEL_PASSWORD: {
    group: 'redis',
    secret: true,
    schema: optionalString,
    description: "With REDIS_SENTINELS: the sentinels' own password (their `requirepass`), when they have one. REDIS_PASSWORD is the primary's.",
  },
  REDIS_USERNAME: { group: 'redis', schema: optionalString, description: "Redis ACL user (overrides the URL's user)." },
  REDIS_PASSWORD: { group: 'redis', secret: true, schema: optionalString, description: "Redis password (overrides the URL's password)." },
  REDIS_TLS_CA_FILE: {
    group: 'redis',
    schema: optionalString,
    description: 'PEM file with the CA that signed the Redis server certificate (for `rediss://` with a private CA; on a cluster, for every node).',
  },
  FLEET_QUEUE_PREFIX: {
    group: 'redis',
    default: '{fleet}',
    schema: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_{}.-]+$/, 'letters, digits, _ . - { } only'),
    description: 'BullMQ key prefix. The braces are a Redis Cluster hash tag: every key of the fleet lands in one slot, as BullMQ requires on a cluster.',
  },
  FLEET_QUEUE_SHARDS: {
    group: 'redis',
    schema: parsedBy((v) => parseShardCounts(v, 'FLEET_QUEUE_SHARDS')),
    description:
      "Queues split into shards, `embeddings=3,deals=2` (embeddings, deals, search; 1-16 each; unset: one each, today's keys). Each shard is a BullMQ queue with a hash tag of its own, so on a Redis Cluster the shards spread over the masters. Producers route each job to a shard (by idempotency key, else in turn) and mark its id (`s2.…`); workers consume every shard with one shared coalescer and pool; the API and Bull Board see every shard. Producers and workers must agree: change it with FLEET_QUEUE_SHARDS_PREVIOUS (docs/operations.md, Sharded queues).",
  },
  FLEET_QUEUE_SHARDS_PREVIOUS: {
    group: 'redis',
    schema: parsedBy((v) => parseShardCounts(v, 'FLEET_QUEUE_SHARDS_PREVIOUS')),
    description:
      'While FLEET_QUEUE_SHARDS changes: the layout before. Workers also consume its shards (so the old layout drains while the new one fills), and producers look an idempotency key up in its shard before adding (so a retried enqueue is not doubled across the change). Unset it once the old shards are empty.',
  },
  FLEET_WORKER_SHARDS: {
    group: 'redis',
    schema: parsedBy((v) => parseShardSelection(v, 'FLEET_WORKER_SHARDS')),
    description: 'Pins this worker to some shards: `embeddings=0+2,deals=1`. A queue not named: every shard. Unset: every shard of every queue.',
  },
  // --- snowflake -----------------------------------------------------------------------------
  SNOWFLAKE_ACCOUNT: {
    group: 'snowflake',
    schema: optionalString,
    description: 'Snowflake account identifier. When unset, `fleet up` starts the local warehouse and every role uses it.',
  },
  SNOWFLAKE_USERNAME: { group: 'snowflake', default: 'fleet', schema: z.string().min(1), description: 'Warehouse user (the local warehouse accepts `fleet`).' },
  SNOWFLAKE_AUTHENTICATOR: {
    group: 'snowflake',
    schema: z.enum(AUTHENTICATORS).optional(),
    description:
      'How the fleet logs in: `SNOWFLAKE_JWT` (key pair; recommended), `PROGRAMMATIC_ACCESS_TOKEN`, `OAUTH` (a token), `OAUTH_CLIENT_CREDENTIALS`, or `SNOWFLAKE` (password: the local warehouse and legacy accounts only; Snowflake refuses it for `TYPE = SERVICE` users). Unset: `SNOWFLAKE_JWT` when a private key is configured, else `SNOWFLAKE`.',
  },
  SNOWFLAKE_PASSWORD: {
    group: 'snowflake',
    default: 'fleet',
    secret: true,
    schema: z.string().min(1),
    description: 'Password, for `SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE` only (the local warehouse accepts `fleet`).',
  },
  SNOWFLAKE_PRIVATE_KEY_FILE: {
    group: 'snowflake',
    schema: optionalString,
    description:
      'Key pair: path of the PKCS#8 PEM private key (RSA, e.g. a mounted Secret; `fleet snowflake keygen` makes one). Re-read when the file changes, so a rotated key needs no restart.',
  },
  SNOWFLAKE_PRIVATE_KEY: {
    group: 'snowflake',
    secret: true,
    schema: optionalString,
    description: 'Key pair: the PKCS#8 PEM private key itself (instead of SNOWFLAKE_PRIVATE_KEY_FILE).',
  },
  SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: {
    group: 'snowflake',
    secret: true,
    schema: optionalString,
    description: 'Passphrase of an encrypted private key (`-----BEGIN ENCRYPTED PRIVATE KEY-----`).',
  },
  SNOWFLAKE_TOKEN: {
    group: 'snowflake',
    secret: true,
    schema: optionalString,
    description: 'Programmatic access token or OAuth access token (with `SNOWFLAKE_AUTHENTICATOR=PROGRAMMATIC_ACCESS_TOKEN` or `OAUTH`).',
  },
  SNOWFLAKE_TOKEN_FILE: {
    group: 'snowflake',
    schema: optionalString,
    description:
      'File holding that token (instead of SNOWFLAKE_TOKEN); re-read when it changes, so a rotated token needs no restart (new sessions use it; open sessions keep theirs).',
  },
  SNOWFLAKE_OAUTH_CLIENT_ID: {
    group: 'snowflake',
    schema: optionalString,
    description: 'OAuth client id, for `SNOWFLAKE_AUTHENTICATOR=OAUTH_CLIENT_CREDENTIALS`.',
  },
  SNOWFLAKE_OAUTH_CLIENT_SECRET: {
    group: 'snowflake',
    secret: true,
    schema: optionalString,
    description: 'OAuth client secret, for `OAUTH_CLIENT_CREDENTIALS`.',
  },
  SNOWFLAKE_OAUTH_TOKEN_URL: {
    group: 'snowflake',
    schema: url(['https:', 'http:']).optional(),
    description: "OAuth token endpoint of your identity provider, for `OAUTH_CLIENT_CREDENTIALS` (the driver's default is Snowflake's own).",
  },
  SNOWFLAKE_ACCESS_URL: {
    group: 'snowflake',
    schema: url(['http:', 'https:']).optional(),
    description:
      'Explicit endpoint, e.g. `http://127.0.0.1:8085` for a local warehouse started with `fleet warehouse`. Unset for real Snowflake (the driver derives it from the account).',
  },
  SNOWFLAKE_WAREHOUSE: { group: 'snowflake', schema: optionalString, description: 'Virtual warehouse to run queries on.' },
  SNOWFLAKE_DATABASE: { group: 'snowflake', schema: optionalString, description: 'Database holding DEALS, GONG_CALLS, SLACK_MESSAGES, LINEAR_ISSUES.' },
  SNOWFLAKE_SCHEMA: { group: 'snowflake', schema: optionalString, description: 'Schema of those tables.' },
  SNOWFLAKE_ROLE: { group: 'snowflake', schema: optionalString, description: 'Role to assume.' },
  // --- cost ----------------------------------------------------------------------------------
  SNOWFLAKE_WAREHOUSE_SIZE: {
    group: 'cost',
    default: 'XSMALL',
    schema: z.enum(Object.keys(WAREHOUSE_CREDITS_PER_HOUR) as [WarehouseSize, ...WarehouseSize[]]),
    description: "Size of SNOWFLAKE_WAREHOUSE, for cost figures: credits per hour by Snowflake's published table (XSMALL 1, SMALL 2, MEDIUM 4 … X6LARGE 512).",
  },
  SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR: {
    group: 'cost',
    schema: z.coerce.number().positive().max(100_000).optional(),
    description: 'Overrides the credits per hour of SNOWFLAKE_WAREHOUSE_SIZE (e.g. a Snowpark-optimized or multi-cluster warehouse).',
  },
  SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS: {
    group: 'cost',
    schema: z
      .string()
      .regex(CORTEX_PRICE_LIST, '`FUNCTION[:model]=credits` pairs separated by commas, e.g. `EMBED_TEXT_768:e5-base-v2=0.03,SENTIMENT=0.08`')
      .optional(),
    description: `Cortex credits per million input tokens, overriding the defaults (${Object.entries(CORTEX_CREDITS_PER_MTOKENS)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}).`,
  },
  SNOWFLAKE_CREDIT_PRICE_USD: {
    group: 'cost',
    default: '3',
    schema: z.coerce.number().positive().max(1000),
    description: 'Price of one credit in your contract (on-demand list price: Standard 2, Enterprise 3, Business Critical 4 USD in AWS US East).',
  },
  // --- local warehouse -----------------------------------------------------------------------
  LOCAL_WAREHOUSE_PORT: {
    group: 'local warehouse',
    default: '8085',
    schema: int(0, 65535),
    description: 'Port of `fleet warehouse` (0 = any free port). `fleet up` always picks a free port.',
  },
  LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: {
    group: 'local warehouse',
    default: '300',
    schema: ms(0, 60_000),
    description: 'Simulated login cost (Snowflake: 200-500 ms).',
  },
  LOCAL_WAREHOUSE_QUERY_LATENCY_MS: {
    group: 'local warehouse',
    default: '0',
    schema: ms(0, 60_000),
    description: 'Simulated round trip per query (network + warehouse).',
  },
  LOCAL_WAREHOUSE_SEED: { group: 'local warehouse', default: '42', schema: int(0, 2 ** 31 - 1), description: 'Seed of the deterministic demo dataset.' },
  LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES: {
    group: 'local warehouse',
    default: '100000',
    schema: z.union([z.literal('off'), int(1, 1024 ** 3)]),
    description:
      'Results larger than this come back as Snowflake does: this much inline, the rest as gzip chunk files the driver downloads (doubling in size up to 16 MiB). `off`: everything inline.',
  },
  LOCAL_WAREHOUSE_DEALS: {
    group: 'local warehouse',
    default: '10000',
    schema: int(10, 1_000_000),
    description: 'Number of demo deals (calls, messages and issues scale with it).',
  },
  // --- pool ----------------------------------------------------------------------------------
  POOL_MIN: { group: 'pool', default: '1', schema: int(0, 256), description: 'Connections kept open when idle.' },
  POOL_MAX: { group: 'pool', default: '8', schema: int(1, 256), description: 'Most warehouse connections per process; also bounds batch calls in flight.' },
  POOL_ACQUIRE_TIMEOUT_MS: {
    group: 'pool',
    default: '10000',
    schema: ms(1, 600_000),
    description: 'How long a caller waits for a free connection before failing.',
  },
  POOL_IDLE_TIMEOUT_MS: { group: 'pool', default: '300000', schema: ms(1000), description: 'Idle connections above POOL_MIN are closed after this long.' },
  POOL_MAX_LIFETIME_MS: { group: 'pool', default: '3600000', schema: ms(1000), description: 'A connection is recycled (closed and replaced) after this age.' },
  POOL_VALIDATE_AFTER_IDLE_MS: {
    group: 'pool',
    default: '30000',
    schema: ms(0),
    description: 'A borrowed connection idle longer than this is validated with a heartbeat first; recently used ones are not (no heartbeat per query).',
  },
  // --- warehouse calls -----------------------------------------------------------------------
  WAREHOUSE_QUERY_TIMEOUT_MS: {
    group: 'warehouse calls',
    default: '30000',
    schema: ms(100, 3600_000),
    description: "Deadline of one warehouse call, including waiting for a connection. The driver's own retries can run for minutes; this bounds them.",
  },
  WAREHOUSE_RETRIES: {
    group: 'warehouse calls',
    default: '3',
    schema: int(0, 20),
    description: 'Retries of a transient failure (network, timeout, session gone), with exponential backoff and jitter.',
  },
  WAREHOUSE_RETRY_BASE_MS: { group: 'warehouse calls', default: '200', schema: ms(1, 60_000), description: 'First backoff; doubles per retry.' },
  WAREHOUSE_BREAKER_THRESHOLD: {
    group: 'warehouse calls',
    default: '5',
    schema: int(1, 1000),
    description: 'Consecutive transient failures that open the circuit breaker (calls then fail fast).',
  },
  WAREHOUSE_BREAKER_RESET_MS: {
    group: 'warehouse calls',
    default: '10000',
    schema: ms(100, 600_000),
    description: 'How long the circuit stays open before one probe call is let through.',
  },
  // --- jobs ----------------------------------------------------------------------------------
  JOB_ATTEMPTS: {
    group: 'jobs',
    default: String(JOB_DEFAULTS.attempts),
    schema: int(1, 100),
    description:
      'Attempts per job before it fails for good (transient warehouse failures are retried this way). Applies to jobs enqueued through the HTTP API and CLI; library callers pass `defaultJobOptions` (same default).',
  },
  JOB_BACKOFF_MS: {
    group: 'jobs',
    default: String(JOB_DEFAULTS.backoffMs),
    schema: ms(0, 3600_000),
    description: 'First retry delay of a failed job; doubles per attempt (exponential).',
  },
  JOB_KEEP_COMPLETED_S: {
    group: 'jobs',
    default: String(JOB_DEFAULTS.keepCompletedS),
    schema: int(0, 90 * 86400),
    description:
      'Completed jobs (and their results) are kept this long. It is also the idempotency window: an enqueue with the same idempotency key within it returns the same job.',
  },
  JOB_KEEP_COMPLETED_COUNT: {
    group: 'jobs',
    default: String(JOB_DEFAULTS.keepCompletedCount),
    schema: int(0, 10_000_000),
    description:
      "At most this many completed jobs are kept per queue. BullMQ honours a job's own retention first: the API and CLI set these on every job; library callers set theirs.",
  },
  JOB_KEEP_FAILED_S: {
    group: 'jobs',
    default: String(JOB_DEFAULTS.keepFailedS),
    schema: int(0, 365 * 86400),
    description: 'Failed jobs are kept this long for inspection in Bull Board.',
  },
  WORKER_LOCK_DURATION_MS: {
    group: 'jobs',
    default: '30000',
    schema: ms(1000, 3600_000),
    description: 'BullMQ job lock; a worker that stops renewing it (killed, stuck) loses the job to stalled-job recovery.',
  },
  WORKER_STALLED_INTERVAL_MS: {
    group: 'jobs',
    default: '30000',
    schema: ms(500, 3600_000),
    description: 'How often workers look for stalled jobs (locks that expired) and move them back to waiting.',
  },
  WORKER_MAX_STALLED_COUNT: {
    group: 'jobs',
    default: '3',
    schema: int(0, 100),
    description: 'Times a job may stall (its worker died) before it fails instead of running again.',
  },
  // --- cache -------------------------------------------------------------------------------
  CACHE_ENABLED: {
    group: 'cache',
    default: 'true',
    schema: bool,
    description: 'Two-tier cache (in-process LRU + Redis) in front of the warehouse for embeddings and deal rows.',
  },
  CACHE_KEY_PREFIX: {
    group: 'cache',
    default: 'fleet:cache',
    schema: z.string().regex(/^[A-Za-z0-9{][A-Za-z0-9_.:{}-]{0,127}$/, 'letters, digits and _ . : { } - only'),
    description:
      'First part of every cache key in Redis (`<prefix>:v1:emb:<sha256>`). Bump the version in code, not here, when a value format changes. On a Redis Cluster (REDIS_CLUSTER_NODES) it must hold a hash tag, and unset it is `{fleet}:cache`.',
  },
  CACHE_L2_TIMEOUT_MS: {
    group: 'cache',
    default: '100',
    schema: ms(1, 10_000),
    description: 'Deadline of one Redis cache round trip; past it the cache answers without L2 (and opens its L2 circuit after repeated failures).',
  },
  CACHE_EMBED_L1_MAX_ENTRIES: { group: 'cache', default: '50000', schema: int(1, 10_000_000), description: 'Most embeddings kept in process.' },
  CACHE_EMBED_L1_MAX_BYTES: {
    group: 'cache',
    default: '67108864',
    schema: int(1024, 64 * 1024 ** 3),
    description: 'Most bytes of embeddings kept in process (64 MiB is about 20,000 vectors of 768 floats).',
  },
  CACHE_EMBED_L1_TTL_MS: { group: 'cache', default: '3600000', schema: ms(1, 365 * 86_400_000), description: 'How long an embedding stays in process.' },
  CACHE_EMBED_L2_TTL_MS: {
    group: 'cache',
    default: '604800000',
    schema: ms(1, 365 * 86_400_000),
    description: 'How long an embedding stays in Redis (an embedding of a given model and text never changes).',
  },
  CACHE_DEAL_L1_TTL_MS: {
    group: 'cache',
    default: '60000',
    schema: ms(1, 86_400_000),
    description: 'How long a deal row stays in process (deals change: keep it short).',
  },
  CACHE_DEAL_L2_TTL_MS: { group: 'cache', default: '300000', schema: ms(1, 86_400_000), description: 'How long a deal row stays in Redis.' },
  CACHE_DEAL_GRACE_MS: {
    group: 'cache',
    default: '600000',
    schema: ms(0, 86_400_000),
    description: 'Stale-while-revalidate for deal rows: past its TTL but within this grace a row is served at once and refreshed in the background.',
  },
  // --- index and search ---------------------------------------------------------------------
  INDEX_SNAPSHOT_DIR: {
    group: 'index',
    default: '.fleet/index',
    schema: z.string().min(1),
    description: 'Directory of index snapshots: written by the index builder, read by search replicas (a shared volume, or the same pod).',
  },
  INDEX_SNAPSHOT_EVERY_MS: {
    group: 'index',
    default: '60000',
    schema: ms(1000, 86_400_000),
    description: 'How often the builder saves a snapshot (also on shutdown). Upserts after the last snapshot are replayed from the Redis log on restart.',
  },
  INDEX_METRIC: {
    group: 'index',
    default: 'cos',
    schema: z.enum(['cos', 'ip', 'l2sq']),
    description: 'Distance metric (fixed for an index; a change needs `fleet index rebuild`). `cos` for embeddings.',
  },
  INDEX_DTYPE: {
    group: 'index',
    default: 'f16',
    schema: z.enum(['f32', 'f16', 'i8']),
    description: "Stored scalar type: f16 gave f32's recall at half the memory and ~1.7x faster search; i8 quarters memory but capped recall@10 near 0.92.",
  },
  INDEX_CONNECTIVITY: {
    group: 'index',
    default: '16',
    schema: int(2, 256),
    description: 'HNSW links per node (M): more means better recall and more memory, slower adds.',
  },
  INDEX_EXPANSION_ADD: {
    group: 'index',
    default: '128',
    schema: int(1, 4096),
    description: 'Candidate list while inserting (ef_construction): graph quality against build time.',
  },
  INDEX_EXPANSION_SEARCH: {
    group: 'index',
    default: '192',
    schema: int(1, 4096),
    description: 'Candidate list while searching (ef): recall against latency. A replica can lower it without a rebuild.',
  },
  SEARCH_MODE: {
    group: 'index',
    default: 'view',
    schema: z.enum(['view', 'load']),
    description: '`view` memory-maps the snapshot (instant, shared pages); `load` reads it into RAM (use on network filesystems).',
  },
  SEARCH_EXACT_FILTER_MAX: {
    group: 'index',
    default: '2048',
    schema: int(0, 1_000_000),
    description:
      "A filtered search whose filter matches at most max(this, 32 x k) items is answered exactly from the snapshot's vector file (recall 1.0; cost grows with the matches); a wider filter goes through the graph with over-fetch. 0: always the graph (docs/search.md).",
  },
  SEARCH_WORKER_CONCURRENCY: { group: 'index', default: '50', schema: int(1, 10_000), description: 'Search jobs one search replica runs at once.' },
  // --- batching ------------------------------------------------------------------------------
  // --- fairness between tenants (src/fairness) -----------------------------------------------
  FAIRNESS_ENABLED: {
    group: 'fairness',
    default: 'true',
    schema: bool,
    description:
      "Fair service between tenants on the `embeddings` and `deals` queues, and the per-tenant limits below. `false`: plain FIFO (one tenant's bulk enqueue makes every other tenant wait behind it). Producers (the API) and workers must agree.",
  },
  FAIR_SLOTS: {
    group: 'fairness',
    default: '64',
    schema: int(1, 100_000),
    description:
      "Jobs of one tenant (per unit of weight) in a queue's FIFO wait list at once; the rest are parked and moved up as the tenant's jobs finish. A newcomer waits behind at most this many jobs of each other busy tenant. Never limits throughput: idle workers take parked jobs.",
  },
  TENANT_MAX_QUEUED: {
    group: 'fairness',
    default: '100000',
    schema: int(1, 100_000_000),
    description: 'Most jobs one tenant may have accepted and not yet finished on one queue; past it the enqueue is refused (HTTP 429, TenantLimitError).',
  },
  TENANT_RATE_PER_S: {
    group: 'fairness',
    schema: z.coerce.number().positive().max(1_000_000).optional(),
    description:
      "Most jobs one tenant may enqueue per second on one queue (a burst of 10 seconds' worth passes); past it, HTTP 429 with Retry-After. Unset: no rate limit.",
  },
  TENANT_POLICIES: {
    group: 'fairness',
    schema: z
      .string()
      .transform((v, ctx) => {
        try {
          return JSON.parse(v) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON' });
          return z.NEVER;
        }
      })
      .pipe(
        z.record(
          z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/, 'tenant names are 1-128 letters, digits or _ . : / -'),
          z.strictObject({
            weight: z.number().int().min(1).max(1000).optional(),
            maxQueued: z.number().int().min(1).max(100_000_000).optional(),
            ratePerS: z.number().positive().max(1_000_000).optional(),
          }),
        ),
      )
      .optional(),
    description:
      'Per-tenant overrides as JSON, e.g. `{"billing":{"weight":4,"maxQueued":500000},"trial":{"ratePerS":20}}`: `weight` (1-1000, share of the service while tenants compete: weight x FAIR_SLOTS slots), `maxQueued`, `ratePerS`.',
  },
  EMBED_BATCH_MAX_SIZE: { group: 'batching', default: '500', schema: int(1, 5000), description: 'Most texts in one EMBED_TEXT_768 call.' },
  EMBED_BATCH_MAX_WAIT_MS: { group: 'batching', default: '25', schema: ms(0, 10_000), description: 'Longest a text waits for its batch to fill.' },
  EMBED_BATCH_TARGET_MS: {
    group: 'batching',
    schema: ms(0, 10_000).optional(),
    description:
      'Adaptive batching when set (EMBED_BATCH_MAX_WAIT_MS is then unused): the longest a text waits for company. A batch is sent sooner once a statement slot is free and waiting would not pay, so a lone job goes at once and batches grow with load up to EMBED_BATCH_MAX_SIZE (docs/decisions/0029-adaptive-batching.md). Unset: the fixed window.',
  },
  DEALS_BATCH_MAX_SIZE: { group: 'batching', default: '1000', schema: int(1, 16_384), description: 'Most deal ids in one `WHERE id IN (...)` call.' },
  DEALS_BATCH_MAX_WAIT_MS: { group: 'batching', default: '10', schema: ms(0, 10_000), description: 'Longest a deal id waits for its batch to fill.' },
  EMBED_WORKER_CONCURRENCY: {
    group: 'batching',
    default: '2000',
    schema: int(1, 10_000),
    description:
      'Embedding jobs one worker process holds at once. Jobs held = jobs/s x seconds each is held (batch wait + warehouse call), so a slower warehouse needs more; beyond EMBED_BATCH_MAX_SIZE x POOL_MAX (plus one batch forming) jobs only wait for a connection (see docs/operations.md, sizing).',
  },
  DEALS_WORKER_CONCURRENCY: {
    group: 'batching',
    default: '50',
    schema: int(1, 10_000),
    description: 'Deal-batch jobs one worker process holds at once (each job already carries up to 1,000 ids).',
  },
  FLOW_WORKER_CONCURRENCY: {
    group: 'batching',
    default: '1000',
    schema: int(1, 10_000),
    description:
      'Workflow steps (collect, analyze, synthesize) one process holds at once per queue. Collectors coalesce across workflows, so it must exceed the workflows started together (200 workflows = 800 collector jobs).',
  },
  FLOW_BATCH_MAX_WAIT_MS: {
    group: 'batching',
    default: '20',
    schema: ms(0, 10_000),
    description: 'Longest a collector or analyser request waits for others to share its warehouse statement.',
  },
} satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof VARIABLES;
