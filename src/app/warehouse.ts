import type { LocalWarehouse } from 'local-snowflake';
import type { FleetConfig } from '../config';
import {
  CircuitBreaker,
  CostMeter,
  type Credentials,
  PooledWarehouse,
  type SnowflakeConnectionSettings,
  snowflakeConnector,
  snowflakeCredentials,
  type WarehouseCallEvent,
  WarehousePool,
} from '../pool';
import type { Logger } from '../telemetry/logger';
import { loadLocalSnowflake } from './local-snowflake';
import type { Releasers } from './releasers';

/**
 * Where the warehouse is: the configured Snowflake account, an explicit access URL (e.g. a
 * `fleet warehouse` started separately), or — with neither — a local warehouse started in-process
 * (the `local-snowflake` development dependency, loaded only then).
 */
export async function resolveWarehouse(
  config: FleetConfig,
  logger: Logger,
  releasers: Releasers,
): Promise<{ settings: SnowflakeConnectionSettings; local?: LocalWarehouse }> {
  const sf = config.snowflake;
  const base = {
    username: sf.username,
    warehouse: sf.warehouse,
    database: sf.database,
    schema: sf.schema,
    role: sf.role,
  };
  if (sf.account || sf.accessUrl) {
    // Checked here, before anything connects: an unreadable key or a wrong passphrase stops the start.
    const credentials = snowflakeCredentials(sf.auth, (e) => {
      // A rotated Secret is seen at the next login: say which key is now in use, or why the new file was refused.
      if (e.ok) logger.info({ variable: e.variable, keyFingerprint: credentials.fingerprint() }, 'warehouse credentials file changed: new sessions use it');
      else
        logger.error({ variable: e.variable, reason: e.reason }, 'warehouse credentials file changed but cannot be used: new sessions keep the previous one');
    });
    logger.info({ user: sf.username, authenticator: credentials.method, keyFingerprint: credentials.fingerprint() }, 'warehouse login configured');
    return { settings: { ...base, credentials, account: sf.account ?? 'local', accessUrl: sf.accessUrl } };
  }
  const lw = config.localWarehouse;
  const local = await loadLocalSnowflake().startLocalWarehouse({
    port: 0,
    user: sf.username,
    password: sf.password,
    loginLatencyMs: lw.loginLatencyMs,
    queryLatencyMs: lw.queryLatencyMs,
    seed: lw.seed,
    deals: lw.deals,
    resultChunkBytes: lw.resultChunkBytes,
    logger: logger.child({ component: 'local-warehouse' }),
  });
  releasers.add('local warehouse', () => local.close());
  logger.info(
    { url: local.url },
    'no SNOWFLAKE_ACCOUNT configured: started the local warehouse (DuckDB; EMBED_TEXT_768 is a local lexical stand-in for e5-base-v2)',
  );
  // With a key pair configured, the local warehouse registers its public key for the user and the fleet
  // logs in with it, so the same configuration runs against it and against Snowflake. Tokens are issued
  // by an account, so with a token configured the local warehouse is reached with the password.
  if (sf.auth.method === 'SNOWFLAKE_JWT') {
    const credentials = snowflakeCredentials(sf.auth);
    registerKeyPair(local, sf.username, credentials);
    return { settings: { ...base, credentials, account: 'local', accessUrl: local.url }, local };
  }
  return { settings: { ...base, password: sf.password, account: 'local', accessUrl: local.url }, local };
}

/** Registers the configured key's public half for `user` in a local warehouse (as `ALTER USER … SET RSA_PUBLIC_KEY`). */
export function registerKeyPair(local: LocalWarehouse, user: string, credentials: Credentials): void {
  const publicKey = credentials.publicKey();
  if (publicKey) local.alterUser(user, { set: { rsaPublicKey: publicKey } });
}

/** The process's one pool and the pooled warehouse client over it, released on shutdown. */
export function createWarehouseClient(
  config: FleetConfig,
  settings: SnowflakeConnectionSettings,
  releasers: Releasers,
  onCall?: (e: WarehouseCallEvent) => void,
  role = 'fleet',
): { pool: WarehousePool; warehouse: PooledWarehouse } {
  const pool = new WarehousePool({
    connector: snowflakeConnector(settings),
    min: config.pool.min,
    max: config.pool.max,
    acquireTimeoutMs: config.pool.acquireTimeoutMs,
    idleTimeoutMs: config.pool.idleTimeoutMs,
    maxLifetimeMs: config.pool.maxLifetimeMs,
    validateAfterIdleMs: config.pool.validateAfterIdleMs,
  });
  releasers.add('warehouse pool', () => pool.close());
  const warehouse = new PooledWarehouse({
    pool,
    timeoutMs: config.calls.timeoutMs,
    retries: config.calls.retries,
    retryBaseMs: config.calls.retryBaseMs,
    breaker: new CircuitBreaker({ threshold: config.calls.breakerThreshold, resetMs: config.calls.breakerResetMs }),
    onCall,
    role,
    cost: new CostMeter({ warehouseCreditsPerHour: config.cost.warehouseCreditsPerHour, cortexCreditsPerMTokens: config.cost.cortexCreditsPerMTokens }),
  });
  return { pool, warehouse };
}
