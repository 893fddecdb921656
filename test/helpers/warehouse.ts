import { type LocalWarehouse, type LocalWarehouseOptions, startLocalWarehouse } from 'local-snowflake';
import type snowflake from 'snowflake-sdk';
import { PooledWarehouse, type PooledWarehouseOptions, snowflakeConnector, WarehousePool, type WarehousePoolOptions } from '../../src/pool';

/** A local warehouse for one test file: no login latency, a small dataset unless asked otherwise. */
export function startTestWarehouse(opts: Partial<LocalWarehouseOptions> = {}): Promise<LocalWarehouse> {
  return startLocalWarehouse({ port: 0, loginLatencyMs: 0, queryLatencyMs: 0, deals: 500, ...opts });
}

export function connectorFor(server: LocalWarehouse, password = 'fleet') {
  return snowflakeConnector({ account: 'local', username: 'fleet', password, accessUrl: server.url });
}

/** A pool and pooled client over the real driver pointed at `server`. Caller closes the pool. */
export function pooledClient(
  server: LocalWarehouse,
  poolOpts: Partial<WarehousePoolOptions> = {},
  clientOpts: Partial<PooledWarehouseOptions> = {},
): { pool: WarehousePool; warehouse: PooledWarehouse } {
  const pool = new WarehousePool({ connector: connectorFor(server), min: 0, max: 4, acquireTimeoutMs: 5_000, ...poolOpts });
  const warehouse = new PooledWarehouse({ pool, timeoutMs: 10_000, retries: 2, retryBaseMs: 20, ...clientOpts });
  return { pool, warehouse };
}

/** Runs one statement as the local warehouse's admin user, over the real driver. */
export async function asAdmin(server: LocalWarehouse, sql: string): Promise<void> {
  const connector = connectorFor(server);
  const conn = await connector.open();
  try {
    await new Promise<void>((resolve, reject) => {
      conn.execute({ sqlText: sql, complete: (err: snowflake.SnowflakeError | undefined) => (err ? reject(err) : resolve()) });
    });
  } finally {
    await connector.close(conn);
  }
}
