import type { z } from 'zod';
import { ConfigError } from './errors';
import { CORTEX_CREDITS_PER_MTOKENS, parseCortexPrices, WAREHOUSE_CREDITS_PER_HOUR } from './prices';
import { type Authenticator, VARIABLES, type VariableName, type VariableSpec } from './variables';

export { ConfigError } from './errors';

export { VARIABLES, type VariableSpec } from './variables';

/** Every variable, parsed: the type of each is what its schema outputs (src/config/variables.ts). */
type RawConfig = { -readonly [K in VariableName]: z.output<(typeof VARIABLES)[K]['schema']> };

/**
 * How the fleet logs in to Snowflake, one variant per authenticator. Secrets are given inline or as a
 * file path; a file is read (and re-read when it changes) by src/pool, never here. (Not one variable per
 * field, so written out rather than inferred.)
 */
export type SnowflakeAuthSettings =
  | { readonly method: 'SNOWFLAKE'; readonly password: string }
  | { readonly method: 'SNOWFLAKE_JWT'; readonly privateKeyFile?: string; readonly privateKey?: string; readonly passphrase?: string }
  | { readonly method: 'PROGRAMMATIC_ACCESS_TOKEN' | 'OAUTH'; readonly token?: string; readonly tokenFile?: string }
  | { readonly method: 'OAUTH_CLIENT_CREDENTIALS'; readonly clientId: string; readonly clientSecret: string; readonly tokenUrl?: string };

type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/**
 * The fleet configuration, grouped by part, from the parsed variables. The types of the result are
 * inferred from here and the schemas: a variable is named once in its schema and once where it is used.
 */
function group(raw: RawConfig, auth: SnowflakeAuthSettings, secrets: string[]) {
  const login = (user: string | undefined, password: string | undefined) =>
    user !== undefined && password !== undefined ? { username: user, password } : undefined;
  return {
    logLevel: raw.LOG_LEVEL,
    shutdownTimeoutMs: raw.FLEET_SHUTDOWN_TIMEOUT_MS,
    logOutageSummaryMs: raw.LOG_OUTAGE_SUMMARY_MS,
    queuePrefix: raw.FLEET_QUEUE_PREFIX,
    /** Connection settings for ioredis, derived from REDIS_* variables. */
    redis: {
      url: raw.REDIS_URL,
      username: raw.REDIS_USERNAME,
      password: raw.REDIS_PASSWORD,
      tlsCaFile: raw.REDIS_TLS_CA_FILE,
      /** REDIS_CLUSTER_NODES: a Redis Cluster's seed nodes (then `url` is not used). */
      cluster: raw.REDIS_CLUSTER_NODES,
      /** REDIS_SENTINELS: the sentinels that name the primary of `master` (then `url` is not used). */
      sentinel: raw.REDIS_SENTINELS ? { ...raw.REDIS_SENTINELS, master: raw.REDIS_SENTINEL_MASTER, password: raw.REDIS_SENTINEL_PASSWORD } : undefined,
    },
    /** Sharded queues (src/contracts/shards.ts): shards per queue, the layout before a change, this worker's pins. */
    shards: {
      counts: raw.FLEET_QUEUE_SHARDS ?? {},
      previous: raw.FLEET_QUEUE_SHARDS_PREVIOUS,
      consume: raw.FLEET_WORKER_SHARDS ?? {},
    },
    snowflake: {
      /** Undefined: no account configured, use the local warehouse. */
      account: raw.SNOWFLAKE_ACCOUNT,
      username: raw.SNOWFLAKE_USERNAME,
      /** SNOWFLAKE_PASSWORD: the login of a local warehouse's admin user, and of `auth` when it is `SNOWFLAKE`. */
      password: raw.SNOWFLAKE_PASSWORD,
      auth,
      accessUrl: raw.SNOWFLAKE_ACCESS_URL,
      warehouse: raw.SNOWFLAKE_WAREHOUSE,
      database: raw.SNOWFLAKE_DATABASE,
      schema: raw.SNOWFLAKE_SCHEMA,
      role: raw.SNOWFLAKE_ROLE,
    },
    /** Prices behind the cost figures (credits per 1,000 jobs). */
    cost: {
      warehouseSize: raw.SNOWFLAKE_WAREHOUSE_SIZE,
      /** Credits per hour of the configured warehouse (its size's list figure unless overridden). */
      warehouseCreditsPerHour: raw.SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR ?? WAREHOUSE_CREDITS_PER_HOUR[raw.SNOWFLAKE_WAREHOUSE_SIZE],
      /** Cortex credits per million input tokens by `FUNCTION` or `FUNCTION:model`. */
      cortexCreditsPerMTokens: { ...CORTEX_CREDITS_PER_MTOKENS, ...parseCortexPrices(raw.SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS) },
      creditPriceUsd: raw.SNOWFLAKE_CREDIT_PRICE_USD,
    },
    localWarehouse: {
      port: raw.LOCAL_WAREHOUSE_PORT,
      loginLatencyMs: raw.LOCAL_WAREHOUSE_LOGIN_LATENCY_MS,
      queryLatencyMs: raw.LOCAL_WAREHOUSE_QUERY_LATENCY_MS,
      seed: raw.LOCAL_WAREHOUSE_SEED,
      deals: raw.LOCAL_WAREHOUSE_DEALS,
      /** Inline part of a result before the rest goes to chunk files; Infinity = never chunk. */
      resultChunkBytes: raw.LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES === 'off' ? Infinity : raw.LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES,
    },
    pool: {
      min: raw.POOL_MIN,
      max: raw.POOL_MAX,
      acquireTimeoutMs: raw.POOL_ACQUIRE_TIMEOUT_MS,
      idleTimeoutMs: raw.POOL_IDLE_TIMEOUT_MS,
      maxLifetimeMs: raw.POOL_MAX_LIFETIME_MS,
      validateAfterIdleMs: raw.POOL_VALIDATE_AFTER_IDLE_MS,
    },
    calls: {
      timeoutMs: raw.WAREHOUSE_QUERY_TIMEOUT_MS,
      retries: raw.WAREHOUSE_RETRIES,
      retryBaseMs: raw.WAREHOUSE_RETRY_BASE_MS,
      breakerThreshold: raw.WAREHOUSE_BREAKER_THRESHOLD,
      breakerResetMs: raw.WAREHOUSE_BREAKER_RESET_MS,
    },
    index: {
      snapshotDir: raw.INDEX_SNAPSHOT_DIR,
      snapshotEveryMs: raw.INDEX_SNAPSHOT_EVERY_MS,
      metric: raw.INDEX_METRIC,
      dtype: raw.INDEX_DTYPE,
      connectivity: raw.INDEX_CONNECTIVITY,
      expansionAdd: raw.INDEX_EXPANSION_ADD,
      expansionSearch: raw.INDEX_EXPANSION_SEARCH,
      searchMode: raw.SEARCH_MODE,
      exactFilterMax: raw.SEARCH_EXACT_FILTER_MAX,
      searchConcurrency: raw.SEARCH_WORKER_CONCURRENCY,
    },
    http: {
      port: raw.PORT,
      host: raw.FLEET_API_HOST,
      tokens: raw.FLEET_API_TOKENS?.split(',') ?? [],
      boardAdmin: login(raw.FLEET_BOARD_ADMIN_USER, raw.FLEET_BOARD_ADMIN_PASSWORD),
      boardViewer: login(raw.FLEET_BOARD_VIEWER_USER, raw.FLEET_BOARD_VIEWER_PASSWORD),
      bodyLimitBytes: raw.FLEET_API_BODY_LIMIT_BYTES,
      maxBacklog: raw.FLEET_API_MAX_BACKLOG,
      maxWaitMs: raw.FLEET_API_MAX_WAIT_MS,
      producerBuffer: { maxJobs: raw.PRODUCER_BUFFER_MAX_JOBS, maxBytes: raw.PRODUCER_BUFFER_MAX_BYTES },
      healthPort: raw.HEALTH_PORT,
    },
    telemetry: {
      otlpTracesUrl: raw.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
      sampleRatio: raw.TRACE_SAMPLE_RATIO,
      slow: { warehouseQueryMs: raw.SLOW_WAREHOUSE_QUERY_MS, jobMs: raw.SLOW_JOB_MS, apiResponseMs: raw.SLOW_API_RESPONSE_MS },
    },
    cache: {
      enabled: raw.CACHE_ENABLED,
      keyPrefix: raw.CACHE_KEY_PREFIX,
      l2TimeoutMs: raw.CACHE_L2_TIMEOUT_MS,
      embeddings: {
        l1MaxEntries: raw.CACHE_EMBED_L1_MAX_ENTRIES,
        l1MaxBytes: raw.CACHE_EMBED_L1_MAX_BYTES,
        l1TtlMs: raw.CACHE_EMBED_L1_TTL_MS,
        l2TtlMs: raw.CACHE_EMBED_L2_TTL_MS,
      },
      deals: { l1TtlMs: raw.CACHE_DEAL_L1_TTL_MS, l2TtlMs: raw.CACHE_DEAL_L2_TTL_MS, graceMs: raw.CACHE_DEAL_GRACE_MS },
    },
    jobs: {
      attempts: raw.JOB_ATTEMPTS,
      backoffMs: raw.JOB_BACKOFF_MS,
      keepCompletedS: raw.JOB_KEEP_COMPLETED_S,
      keepCompletedCount: raw.JOB_KEEP_COMPLETED_COUNT,
      keepFailedS: raw.JOB_KEEP_FAILED_S,
      lockDurationMs: raw.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: raw.WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: raw.WORKER_MAX_STALLED_COUNT,
    },
    embeddings: {
      maxBatchSize: raw.EMBED_BATCH_MAX_SIZE,
      maxWaitMs: raw.EMBED_BATCH_MAX_WAIT_MS,
      targetMs: raw.EMBED_BATCH_TARGET_MS,
      concurrency: raw.EMBED_WORKER_CONCURRENCY,
    },
    fairness: {
      enabled: raw.FAIRNESS_ENABLED,
      slots: raw.FAIR_SLOTS,
      defaults: { weight: 1, maxQueued: raw.TENANT_MAX_QUEUED, ...(raw.TENANT_RATE_PER_S ? { ratePerS: raw.TENANT_RATE_PER_S } : {}) },
      tenants: raw.TENANT_POLICIES ?? {},
    },
    deals: { maxBatchSize: raw.DEALS_BATCH_MAX_SIZE, maxWaitMs: raw.DEALS_BATCH_MAX_WAIT_MS, concurrency: raw.DEALS_WORKER_CONCURRENCY },
    flows: { concurrency: raw.FLOW_WORKER_CONCURRENCY, maxWaitMs: raw.FLOW_BATCH_MAX_WAIT_MS },
    /** Values of the variables holding secrets, so logs can be checked and redacted. */
    secrets,
  };
}

/** The whole fleet configuration: read once from the environment, validated, frozen. */
export type FleetConfig = DeepReadonly<ReturnType<typeof group>>;
/** Connection settings for ioredis (the URL, and optionally an ACL user, password and CA file). */
export type RedisSettings = Pick<FleetConfig['redis'], 'url'> & Partial<FleetConfig['redis']>;
export type JobSettings = FleetConfig['jobs'];

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

/**
 * Reads every fleet variable from `env` (default: `process.env`) once. Unknown values are errors,
 * never silently replaced by defaults. This is the only place in the fleet that reads the environment.
 *
 * @example
 *   const config = loadConfig();             // at the entry point
 *   const config = loadConfig({ POOL_MAX: '4' }); // in a test
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const problems: string[] = [];
  const parsed: Partial<Record<VariableName, unknown>> = {};
  for (const [name, spec] of Object.entries(VARIABLES) as [VariableName, VariableSpec][]) {
    const given = env[name];
    const value = given === undefined || given === '' ? spec.default : given;
    const result = spec.schema.safeParse(value);
    if (!result.success) {
      const shown = spec.secret ? '(secret)' : JSON.stringify(value);
      const why = result.error.issues.map((i) => i.message).join('; ');
      problems.push(`${name}=${shown}: ${why}`);
      continue;
    }
    parsed[name] = result.data;
  }
  // Every variable parsed by its own schema, so each value has the type that schema outputs.
  const raw = parsed as RawConfig;
  if (problems.length === 0 && raw.POOL_MIN > raw.POOL_MAX) {
    problems.push(`POOL_MIN=${raw.POOL_MIN} is greater than POOL_MAX=${raw.POOL_MAX}`);
  }
  for (const who of ['ADMIN', 'VIEWER'] as const) {
    const user = raw[`FLEET_BOARD_${who}_USER`];
    const pass = raw[`FLEET_BOARD_${who}_PASSWORD`];
    if ((user === undefined) !== (pass === undefined)) problems.push(`FLEET_BOARD_${who}_USER and FLEET_BOARD_${who}_PASSWORD must be set together`);
  }
  if (raw.REDIS_CLUSTER_NODES) clusterKeys(raw, env, problems);
  shardKeys(raw, problems);
  sentinelKeys(raw, env, problems);
  const auth = problems.length ? undefined : snowflakeAuth(raw, problems);
  if (problems.length || !auth) throw new ConfigError(problems);

  const secrets = (Object.entries(VARIABLES) as [VariableName, VariableSpec][])
    // A default (the local warehouse's `fleet`) is public, not a secret: scrubbing it would mangle every log line.
    .filter(([k, spec]) => spec.secret && typeof raw[k] === 'string' && raw[k] !== spec.default)
    // A list of tokens is scrubbed token by token: one token alone in a log line is still a secret.
    .flatMap(([k]) => (k === 'FLEET_API_TOKENS' ? (raw[k] as string).split(',') : [raw[k] as string]));

  return deepFreeze<FleetConfig>(group(raw, auth, secrets));
}

/** True when `prefix` holds a Redis Cluster hash tag: a `{`, then at least one character, then `}`. */
function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open >= 0 && prefix.indexOf('}', open + 1) > open + 1;
}

/** The cache's keys on a cluster when CACHE_KEY_PREFIX is not set: one slot, as its multi-key reads need. */
const CLUSTER_CACHE_KEY_PREFIX = '{fleet}:cache';

/**
 * On a Redis Cluster, a command or script may only touch keys of one slot: BullMQ's scripts touch several
 * keys of a queue, and the cache reads many keys per command, so both prefixes need a hash tag. An unset
 * CACHE_KEY_PREFIX becomes `{fleet}:cache`; REDIS_URL set as well is a mistake worth naming.
 */
function clusterKeys(raw: RawConfig, env: NodeJS.ProcessEnv, problems: string[]): void {
  if (env.REDIS_URL) problems.push('set only one of REDIS_URL and REDIS_CLUSTER_NODES (a cluster is reached through its seed nodes)');
  // (A prefix that did not parse is already a problem of its own.)
  if (raw.FLEET_QUEUE_PREFIX !== undefined && !hasHashTag(raw.FLEET_QUEUE_PREFIX)) {
    problems.push(`FLEET_QUEUE_PREFIX=${JSON.stringify(raw.FLEET_QUEUE_PREFIX)} has no hash tag: on a Redis Cluster it needs one, e.g. {fleet}`);
  }
  if (!env.CACHE_KEY_PREFIX) raw.CACHE_KEY_PREFIX = CLUSTER_CACHE_KEY_PREFIX;
  else if (raw.CACHE_KEY_PREFIX !== undefined && !hasHashTag(raw.CACHE_KEY_PREFIX)) {
    problems.push(
      `CACHE_KEY_PREFIX=${JSON.stringify(raw.CACHE_KEY_PREFIX)} has no hash tag: on a Redis Cluster it needs one, e.g. ${CLUSTER_CACHE_KEY_PREFIX}`,
    );
  }
}

/**
 * REDIS_SENTINELS names the primary through its sentinels: a fixed REDIS_URL or a cluster's seeds as well
 * would be a second answer to "where is Redis", and a sentinel password without sentinels a forgotten one.
 */
function sentinelKeys(raw: RawConfig, env: NodeJS.ProcessEnv, problems: string[]): void {
  if (!raw.REDIS_SENTINELS) {
    if (raw.REDIS_SENTINEL_PASSWORD !== undefined) problems.push('REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not');
    return;
  }
  if (env.REDIS_CLUSTER_NODES) {
    problems.push(
      'set only one of REDIS_SENTINELS and REDIS_CLUSTER_NODES (Sentinel watches one primary and its replicas; a Redis Cluster fails over by itself)',
    );
  }
  if (env.REDIS_URL) problems.push('set only one of REDIS_URL and REDIS_SENTINELS (the sentinels name the primary)');
}

/**
 * A sharded queue's shards after the first vary the prefix's hash tag, so the prefix needs one; a worker pinned
 * to a shard must pin one that exists (in FLEET_QUEUE_SHARDS or, during a change, FLEET_QUEUE_SHARDS_PREVIOUS).
 */
function shardKeys(raw: RawConfig, problems: string[]): void {
  const counts = raw.FLEET_QUEUE_SHARDS ?? {};
  const previous = raw.FLEET_QUEUE_SHARDS_PREVIOUS ?? {};
  const held = (q: string) => Math.max(counts[q as keyof typeof counts] ?? 1, previous[q as keyof typeof previous] ?? 1);
  const sharded = Object.keys({ ...counts, ...previous }).filter((q) => held(q) > 1);
  if (sharded.length && raw.FLEET_QUEUE_PREFIX !== undefined && !hasHashTag(raw.FLEET_QUEUE_PREFIX)) {
    problems.push(
      `FLEET_QUEUE_PREFIX=${JSON.stringify(raw.FLEET_QUEUE_PREFIX)} has no hash tag: sharded queues (${sharded.join(', ')}) need one to vary per shard, e.g. {fleet}`,
    );
  }
  for (const [queue, shards] of Object.entries(raw.FLEET_WORKER_SHARDS ?? {})) {
    const missing = (shards ?? []).filter((k) => k >= held(queue));
    if (missing.length)
      problems.push(`FLEET_WORKER_SHARDS pins ${queue} to shard ${missing.join(', ')}, but ${queue} has ${held(queue)} shard(s) (0-${held(queue) - 1})`);
  }
}

/** The secret variables each login method reads; any other one that is set is a mistake worth naming. */
const AUTH_VARIABLES: Record<Authenticator, readonly VariableName[]> = {
  SNOWFLAKE: [],
  SNOWFLAKE_JWT: ['SNOWFLAKE_PRIVATE_KEY_FILE', 'SNOWFLAKE_PRIVATE_KEY', 'SNOWFLAKE_PRIVATE_KEY_PASSPHRASE'],
  PROGRAMMATIC_ACCESS_TOKEN: ['SNOWFLAKE_TOKEN', 'SNOWFLAKE_TOKEN_FILE'],
  OAUTH: ['SNOWFLAKE_TOKEN', 'SNOWFLAKE_TOKEN_FILE'],
  OAUTH_CLIENT_CREDENTIALS: ['SNOWFLAKE_OAUTH_CLIENT_ID', 'SNOWFLAKE_OAUTH_CLIENT_SECRET', 'SNOWFLAKE_OAUTH_TOKEN_URL'],
};

/**
 * Picks the login method and checks that its secrets are given exactly once, naming the variables in
 * every problem (the key's content is checked by src/pool before anything connects).
 */
function snowflakeAuth(raw: RawConfig, problems: string[]): SnowflakeAuthSettings | undefined {
  const o = (k: VariableName) => raw[k] as string | undefined;
  const hasKey = o('SNOWFLAKE_PRIVATE_KEY_FILE') !== undefined || o('SNOWFLAKE_PRIVATE_KEY') !== undefined;
  const method: Authenticator = raw.SNOWFLAKE_AUTHENTICATOR ?? (hasKey ? 'SNOWFLAKE_JWT' : 'SNOWFLAKE');
  const before = problems.length;
  const stray = (Object.values(AUTH_VARIABLES).flat() as VariableName[]).filter(
    (k, i, all) => all.indexOf(k) === i && o(k) !== undefined && !AUTH_VARIABLES[method].includes(k),
  );
  for (const k of stray) {
    const users = (Object.keys(AUTH_VARIABLES) as Authenticator[]).filter((m) => AUTH_VARIABLES[m].includes(k));
    problems.push(`${k} is set, but SNOWFLAKE_AUTHENTICATOR=${method} does not use it (it is for ${users.join(' or ')})`);
  }
  const exactlyOne = (a: VariableName, b: VariableName) => {
    if (o(a) === undefined && o(b) === undefined) problems.push(`SNOWFLAKE_AUTHENTICATOR=${method} needs ${a} or ${b}`);
    if (o(a) !== undefined && o(b) !== undefined) problems.push(`set only one of ${a} and ${b}`);
  };
  switch (method) {
    case 'SNOWFLAKE':
      return { method, password: raw.SNOWFLAKE_PASSWORD };
    case 'SNOWFLAKE_JWT':
      exactlyOne('SNOWFLAKE_PRIVATE_KEY_FILE', 'SNOWFLAKE_PRIVATE_KEY');
      return problems.length > before
        ? undefined
        : {
            method,
            privateKeyFile: o('SNOWFLAKE_PRIVATE_KEY_FILE'),
            privateKey: o('SNOWFLAKE_PRIVATE_KEY'),
            passphrase: o('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE'),
          };
    case 'PROGRAMMATIC_ACCESS_TOKEN':
    case 'OAUTH':
      exactlyOne('SNOWFLAKE_TOKEN', 'SNOWFLAKE_TOKEN_FILE');
      return problems.length > before ? undefined : { method, token: o('SNOWFLAKE_TOKEN'), tokenFile: o('SNOWFLAKE_TOKEN_FILE') };
    case 'OAUTH_CLIENT_CREDENTIALS':
      for (const k of ['SNOWFLAKE_OAUTH_CLIENT_ID', 'SNOWFLAKE_OAUTH_CLIENT_SECRET'] as const) {
        if (o(k) === undefined) problems.push(`SNOWFLAKE_AUTHENTICATOR=${method} needs ${k}`);
      }
      return problems.length > before
        ? undefined
        : { method, clientId: o('SNOWFLAKE_OAUTH_CLIENT_ID')!, clientSecret: o('SNOWFLAKE_OAUTH_CLIENT_SECRET')!, tokenUrl: o('SNOWFLAKE_OAUTH_TOKEN_URL') };
  }
}

/**
 * BullMQ job options from the `jobs` settings, for the producers the fleet itself runs (HTTP API, CLI).
 * BullMQ applies a job's own `removeOnComplete` before the worker's, so retention must be set here too.
 */
export function jobOptionsFrom(jobs: JobSettings): {
  attempts: number;
  backoff: { type: 'exponential'; delay: number };
  removeOnComplete: { age: number; count: number };
  removeOnFail: { age: number };
} {
  return {
    attempts: jobs.attempts,
    backoff: { type: 'exponential', delay: jobs.backoffMs },
    removeOnComplete: { age: jobs.keepCompletedS, count: jobs.keepCompletedCount },
    removeOnFail: { age: jobs.keepFailedS },
  };
}
