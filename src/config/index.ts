import { ConfigError } from './errors';
import { CORTEX_CREDITS_PER_MTOKENS, parseCortexPrices, WAREHOUSE_CREDITS_PER_HOUR, type WarehouseSize } from './prices';
import { VARIABLES, type Authenticator, type VariableName, type VariableSpec } from './variables';

export { ConfigError } from './errors';
export { AUTHENTICATORS, VARIABLES, type Authenticator, type VariableName, type VariableSpec } from './variables';
export { WAREHOUSE_CREDITS_PER_HOUR, CORTEX_CREDITS_PER_MTOKENS, type WarehouseSize } from './prices';

type Raw = { [K in VariableName]: unknown };

/** Connection settings for ioredis, derived from REDIS_* variables. */
export interface RedisSettings {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly tlsCaFile?: string;
}

/**
 * How the fleet logs in to Snowflake, one variant per authenticator. Secrets are given inline or as a
 * file path; a file is read (and re-read when it changes) by src/pool, never here.
 */
export type SnowflakeAuthSettings =
  | { readonly method: 'SNOWFLAKE'; readonly password: string }
  | { readonly method: 'SNOWFLAKE_JWT'; readonly privateKeyFile?: string; readonly privateKey?: string; readonly passphrase?: string }
  | { readonly method: 'PROGRAMMATIC_ACCESS_TOKEN' | 'OAUTH'; readonly token?: string; readonly tokenFile?: string }
  | { readonly method: 'OAUTH_CLIENT_CREDENTIALS'; readonly clientId: string; readonly clientSecret: string; readonly tokenUrl?: string };

export interface SnowflakeSettings {
  /** Undefined: no account configured, use the local warehouse. */
  readonly account?: string;
  readonly username: string;
  /** The password (SNOWFLAKE_PASSWORD): the login of a local warehouse's admin user, and of `auth` when it is `SNOWFLAKE`. */
  readonly password: string;
  readonly auth: SnowflakeAuthSettings;
  readonly accessUrl?: string;
  readonly warehouse?: string;
  readonly database?: string;
  readonly schema?: string;
  readonly role?: string;
}

/** Prices behind the cost figures (credits per 1,000 jobs). */
export interface CostSettings {
  readonly warehouseSize: WarehouseSize;
  /** Credits per hour of the configured warehouse (its size's list figure unless overridden). */
  readonly warehouseCreditsPerHour: number;
  /** Cortex credits per million input tokens by `FUNCTION` or `FUNCTION:model`. */
  readonly cortexCreditsPerMTokens: Readonly<Record<string, number>>;
  readonly creditPriceUsd: number;
}

export interface LocalWarehouseSettings {
  readonly port: number;
  readonly loginLatencyMs: number;
  readonly queryLatencyMs: number;
  readonly seed: number;
  readonly deals: number;
  /** Inline part of a result before the rest goes to chunk files; Infinity = never chunk. */
  readonly resultChunkBytes: number;
}

export interface PoolSettings {
  readonly min: number;
  readonly max: number;
  readonly acquireTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly validateAfterIdleMs: number;
}

export interface CallPolicySettings {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly breakerThreshold: number;
  readonly breakerResetMs: number;
}

export interface BatchSettings {
  readonly maxBatchSize: number;
  readonly maxWaitMs: number;
  readonly concurrency: number;
}

export interface JobSettings {
  readonly attempts: number;
  readonly backoffMs: number;
  readonly keepCompletedS: number;
  readonly keepCompletedCount: number;
  readonly keepFailedS: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
}

export interface CacheSettings {
  readonly enabled: boolean;
  readonly keyPrefix: string;
  readonly l2TimeoutMs: number;
  readonly embeddings: { readonly l1MaxEntries: number; readonly l1MaxBytes: number; readonly l1TtlMs: number; readonly l2TtlMs: number };
  readonly deals: { readonly l1TtlMs: number; readonly l2TtlMs: number; readonly graceMs: number };
}

export interface IndexConfig {
  readonly snapshotDir: string;
  readonly snapshotEveryMs: number;
  readonly metric: 'cos' | 'ip' | 'l2sq';
  readonly dtype: 'f32' | 'f16' | 'i8';
  readonly connectivity: number;
  readonly expansionAdd: number;
  readonly expansionSearch: number;
  readonly searchMode: 'view' | 'load';
  readonly searchConcurrency: number;
}

export interface HttpConfig {
  readonly port: number;
  readonly host: string;
  readonly tokens: readonly string[];
  readonly boardAdmin?: { readonly username: string; readonly password: string };
  readonly boardViewer?: { readonly username: string; readonly password: string };
  readonly bodyLimitBytes: number;
  readonly maxBacklog: number;
  readonly maxWaitMs: number;
  readonly healthPort: number;
}

export interface TelemetryConfig {
  readonly otlpTracesUrl?: string;
  readonly sampleRatio: number;
  readonly slow: { readonly warehouseQueryMs: number; readonly jobMs: number; readonly apiResponseMs: number };
}

/** The whole fleet configuration: read once from the environment, validated, frozen. */
export interface FleetConfig {
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly shutdownTimeoutMs: number;
  readonly queuePrefix: string;
  readonly redis: RedisSettings;
  readonly snowflake: SnowflakeSettings;
  readonly cost: CostSettings;
  readonly localWarehouse: LocalWarehouseSettings;
  readonly pool: PoolSettings;
  readonly calls: CallPolicySettings;
  readonly jobs: JobSettings;
  readonly cache: CacheSettings;
  readonly http: HttpConfig;
  readonly telemetry: TelemetryConfig;
  readonly index: IndexConfig;
  readonly embeddings: BatchSettings;
  readonly deals: BatchSettings;
  readonly flows: { readonly concurrency: number; readonly maxWaitMs: number };
  /** Names of the variables holding secrets, with their values, so logs can be checked and redacted. */
  readonly secrets: readonly string[];
}

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
  const raw = {} as Raw;
  for (const [name, spec] of Object.entries(VARIABLES) as [VariableName, VariableSpec][]) {
    const given = env[name];
    const value = given === undefined || given === '' ? spec.default : given;
    const parsed = spec.schema.safeParse(value);
    if (!parsed.success) {
      const shown = spec.secret ? '(secret)' : JSON.stringify(value);
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      problems.push(`${name}=${shown}: ${why}`);
      continue;
    }
    raw[name] = parsed.data;
  }
  if (problems.length === 0 && (raw.POOL_MIN as number) > (raw.POOL_MAX as number)) {
    problems.push(`POOL_MIN=${raw.POOL_MIN} is greater than POOL_MAX=${raw.POOL_MAX}`);
  }
  for (const who of ['ADMIN', 'VIEWER'] as const) {
    const user = raw[`FLEET_BOARD_${who}_USER`];
    const pass = raw[`FLEET_BOARD_${who}_PASSWORD`];
    if ((user === undefined) !== (pass === undefined)) problems.push(`FLEET_BOARD_${who}_USER and FLEET_BOARD_${who}_PASSWORD must be set together`);
  }
  const auth = problems.length ? undefined : snowflakeAuth(raw, problems);
  if (problems.length) throw new ConfigError(problems);

  const s = (k: VariableName) => raw[k] as string;
  const o = (k: VariableName) => raw[k] as string | undefined;
  const n = (k: VariableName) => raw[k] as number;
  const secrets = (Object.entries(VARIABLES) as [VariableName, VariableSpec][])
    // A default (the local warehouse's `fleet`) is public, not a secret: scrubbing it would mangle every log line.
    .filter(([k, spec]) => spec.secret && typeof raw[k] === 'string' && raw[k] !== spec.default)
    // A list of tokens is scrubbed token by token: one token alone in a log line is still a secret.
    .flatMap(([k]) => (k === 'FLEET_API_TOKENS' ? (raw[k] as string).split(',') : [raw[k] as string]));

  return deepFreeze<FleetConfig>({
    logLevel: s('LOG_LEVEL') as FleetConfig['logLevel'],
    shutdownTimeoutMs: n('FLEET_SHUTDOWN_TIMEOUT_MS'),
    queuePrefix: s('FLEET_QUEUE_PREFIX'),
    redis: {
      url: s('REDIS_URL'),
      username: o('REDIS_USERNAME'),
      password: o('REDIS_PASSWORD'),
      tlsCaFile: o('REDIS_TLS_CA_FILE'),
    },
    snowflake: {
      account: o('SNOWFLAKE_ACCOUNT'),
      username: s('SNOWFLAKE_USERNAME'),
      password: s('SNOWFLAKE_PASSWORD'),
      auth: auth!,
      accessUrl: o('SNOWFLAKE_ACCESS_URL'),
      warehouse: o('SNOWFLAKE_WAREHOUSE'),
      database: o('SNOWFLAKE_DATABASE'),
      schema: o('SNOWFLAKE_SCHEMA'),
      role: o('SNOWFLAKE_ROLE'),
    },
    cost: {
      warehouseSize: s('SNOWFLAKE_WAREHOUSE_SIZE') as WarehouseSize,
      warehouseCreditsPerHour: (raw.SNOWFLAKE_WAREHOUSE_CREDITS_PER_HOUR as number | undefined) ?? WAREHOUSE_CREDITS_PER_HOUR[s('SNOWFLAKE_WAREHOUSE_SIZE') as WarehouseSize],
      cortexCreditsPerMTokens: { ...CORTEX_CREDITS_PER_MTOKENS, ...parseCortexPrices(o('SNOWFLAKE_CORTEX_CREDITS_PER_MTOKENS')) },
      creditPriceUsd: n('SNOWFLAKE_CREDIT_PRICE_USD'),
    },
    localWarehouse: {
      port: n('LOCAL_WAREHOUSE_PORT'),
      loginLatencyMs: n('LOCAL_WAREHOUSE_LOGIN_LATENCY_MS'),
      queryLatencyMs: n('LOCAL_WAREHOUSE_QUERY_LATENCY_MS'),
      seed: n('LOCAL_WAREHOUSE_SEED'),
      deals: n('LOCAL_WAREHOUSE_DEALS'),
      resultChunkBytes: raw.LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES === 'off' ? Infinity : n('LOCAL_WAREHOUSE_RESULT_CHUNK_BYTES'),
    },
    pool: {
      min: n('POOL_MIN'),
      max: n('POOL_MAX'),
      acquireTimeoutMs: n('POOL_ACQUIRE_TIMEOUT_MS'),
      idleTimeoutMs: n('POOL_IDLE_TIMEOUT_MS'),
      maxLifetimeMs: n('POOL_MAX_LIFETIME_MS'),
      validateAfterIdleMs: n('POOL_VALIDATE_AFTER_IDLE_MS'),
    },
    calls: {
      timeoutMs: n('WAREHOUSE_QUERY_TIMEOUT_MS'),
      retries: n('WAREHOUSE_RETRIES'),
      retryBaseMs: n('WAREHOUSE_RETRY_BASE_MS'),
      breakerThreshold: n('WAREHOUSE_BREAKER_THRESHOLD'),
      breakerResetMs: n('WAREHOUSE_BREAKER_RESET_MS'),
    },
    index: {
      snapshotDir: s('INDEX_SNAPSHOT_DIR'),
      snapshotEveryMs: n('INDEX_SNAPSHOT_EVERY_MS'),
      metric: s('INDEX_METRIC') as IndexConfig['metric'],
      dtype: s('INDEX_DTYPE') as IndexConfig['dtype'],
      connectivity: n('INDEX_CONNECTIVITY'),
      expansionAdd: n('INDEX_EXPANSION_ADD'),
      expansionSearch: n('INDEX_EXPANSION_SEARCH'),
      searchMode: s('SEARCH_MODE') as IndexConfig['searchMode'],
      searchConcurrency: n('SEARCH_WORKER_CONCURRENCY'),
    },
    http: {
      port: n('PORT'),
      host: s('FLEET_API_HOST'),
      tokens: o('FLEET_API_TOKENS')?.split(',') ?? [],
      boardAdmin: o('FLEET_BOARD_ADMIN_USER') ? { username: s('FLEET_BOARD_ADMIN_USER'), password: s('FLEET_BOARD_ADMIN_PASSWORD') } : undefined,
      boardViewer: o('FLEET_BOARD_VIEWER_USER') ? { username: s('FLEET_BOARD_VIEWER_USER'), password: s('FLEET_BOARD_VIEWER_PASSWORD') } : undefined,
      bodyLimitBytes: n('FLEET_API_BODY_LIMIT_BYTES'),
      maxBacklog: n('FLEET_API_MAX_BACKLOG'),
      maxWaitMs: n('FLEET_API_MAX_WAIT_MS'),
      healthPort: n('HEALTH_PORT'),
    },
    telemetry: {
      otlpTracesUrl: o('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
      sampleRatio: n('TRACE_SAMPLE_RATIO'),
      slow: { warehouseQueryMs: n('SLOW_WAREHOUSE_QUERY_MS'), jobMs: n('SLOW_JOB_MS'), apiResponseMs: n('SLOW_API_RESPONSE_MS') },
    },
    cache: {
      enabled: raw.CACHE_ENABLED as boolean,
      keyPrefix: s('CACHE_KEY_PREFIX'),
      l2TimeoutMs: n('CACHE_L2_TIMEOUT_MS'),
      embeddings: {
        l1MaxEntries: n('CACHE_EMBED_L1_MAX_ENTRIES'),
        l1MaxBytes: n('CACHE_EMBED_L1_MAX_BYTES'),
        l1TtlMs: n('CACHE_EMBED_L1_TTL_MS'),
        l2TtlMs: n('CACHE_EMBED_L2_TTL_MS'),
      },
      deals: { l1TtlMs: n('CACHE_DEAL_L1_TTL_MS'), l2TtlMs: n('CACHE_DEAL_L2_TTL_MS'), graceMs: n('CACHE_DEAL_GRACE_MS') },
    },
    jobs: {
      attempts: n('JOB_ATTEMPTS'),
      backoffMs: n('JOB_BACKOFF_MS'),
      keepCompletedS: n('JOB_KEEP_COMPLETED_S'),
      keepCompletedCount: n('JOB_KEEP_COMPLETED_COUNT'),
      keepFailedS: n('JOB_KEEP_FAILED_S'),
      lockDurationMs: n('WORKER_LOCK_DURATION_MS'),
      stalledIntervalMs: n('WORKER_STALLED_INTERVAL_MS'),
      maxStalledCount: n('WORKER_MAX_STALLED_COUNT'),
    },
    embeddings: {
      maxBatchSize: n('EMBED_BATCH_MAX_SIZE'),
      maxWaitMs: n('EMBED_BATCH_MAX_WAIT_MS'),
      concurrency: n('EMBED_WORKER_CONCURRENCY'),
    },
    deals: {
      maxBatchSize: n('DEALS_BATCH_MAX_SIZE'),
      maxWaitMs: n('DEALS_BATCH_MAX_WAIT_MS'),
      concurrency: n('DEALS_WORKER_CONCURRENCY'),
    },
    flows: { concurrency: n('FLOW_WORKER_CONCURRENCY'), maxWaitMs: n('FLOW_BATCH_MAX_WAIT_MS') },
    secrets,
  });
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
function snowflakeAuth(raw: Raw, problems: string[]): SnowflakeSettings['auth'] | undefined {
  const o = (k: VariableName) => raw[k] as string | undefined;
  const hasKey = o('SNOWFLAKE_PRIVATE_KEY_FILE') !== undefined || o('SNOWFLAKE_PRIVATE_KEY') !== undefined;
  const method = (o('SNOWFLAKE_AUTHENTICATOR') as Authenticator | undefined) ?? (hasKey ? 'SNOWFLAKE_JWT' : 'SNOWFLAKE');
  const before = problems.length;
  const stray = (Object.values(AUTH_VARIABLES).flat() as VariableName[]).filter((k, i, all) => all.indexOf(k) === i && o(k) !== undefined && !AUTH_VARIABLES[method].includes(k));
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
      return { method, password: raw.SNOWFLAKE_PASSWORD as string };
    case 'SNOWFLAKE_JWT':
      exactlyOne('SNOWFLAKE_PRIVATE_KEY_FILE', 'SNOWFLAKE_PRIVATE_KEY');
      return problems.length > before ? undefined : { method, privateKeyFile: o('SNOWFLAKE_PRIVATE_KEY_FILE'), privateKey: o('SNOWFLAKE_PRIVATE_KEY'), passphrase: o('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') };
    case 'PROGRAMMATIC_ACCESS_TOKEN':
    case 'OAUTH':
      exactlyOne('SNOWFLAKE_TOKEN', 'SNOWFLAKE_TOKEN_FILE');
      return problems.length > before ? undefined : { method, token: o('SNOWFLAKE_TOKEN'), tokenFile: o('SNOWFLAKE_TOKEN_FILE') };
    case 'OAUTH_CLIENT_CREDENTIALS':
      for (const k of ['SNOWFLAKE_OAUTH_CLIENT_ID', 'SNOWFLAKE_OAUTH_CLIENT_SECRET'] as const) {
        if (o(k) === undefined) problems.push(`SNOWFLAKE_AUTHENTICATOR=${method} needs ${k}`);
      }
      return problems.length > before ? undefined : { method, clientId: o('SNOWFLAKE_OAUTH_CLIENT_ID')!, clientSecret: o('SNOWFLAKE_OAUTH_CLIENT_SECRET')!, tokenUrl: o('SNOWFLAKE_OAUTH_TOKEN_URL') };
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
