import type snowflake from 'snowflake-sdk';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { PooledWarehouse, snowflakeConnector, WarehousePool } from '../pool';
import { getDeals } from '../warehouse/queries/get-deals';
import type { BenchContext } from './context';
import { percentile, round, runConcurrently } from './stats';

function execute(conn: snowflake.Connection, sqlText: string, binds: string[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    conn.execute({ sqlText, binds, complete: (err, _s, rows) => (err ? reject(err) : resolve(rows ?? [])) });
  });
}

/**
 * `fleet bench pool`: 100 single-deal queries at login latency 300 ms and round trip 20 ms, 8 callers
 * at a time, (a) opening a new session per query as the naive service did, (b) through the shared
 * pool of 8. The pooled figure is steady state (a process's pool outlives millions of queries); the
 * warm-up (8 logins) is reported on its own.
 */
export async function runPoolBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const queries = ctx.quick ? 24 : 100;
  const concurrency = 8;
  const loginLatencyMs = 300;
  const rttMs = 20;
  const server = await loadLocalSnowflake().startLocalWarehouse({ port: 0, loginLatencyMs, queryLatencyMs: rttMs, deals: 10_000 });
  try {
    const settings = { account: 'local', username: 'fleet', password: 'fleet', accessUrl: server.url };
    const connector = snowflakeConnector(settings);
    const sql = 'SELECT ID, NAME, STAGE, AMOUNT FROM DEALS WHERE ID IN (?)';
    const id = (i: number) => `D-${(i % 10_000) + 1}`;

    ctx.log(`naive: ${queries} queries, ${concurrency} at a time, one login each`);
    server.resetStats();
    let t = performance.now();
    await runConcurrently(queries, concurrency, async (i) => {
      const conn = await connector.open();
      try {
        return await execute(conn, sql, [id(i)]);
      } finally {
        await connector.close(conn);
      }
    });
    const naiveMs = performance.now() - t;
    const naiveLogins = server.stats().logins;

    ctx.log(`pooled: same queries through a pool of ${concurrency}`);
    server.resetStats();
    const acquireWaits: number[] = [];
    const pool = new WarehousePool({ connector, min: 0, max: concurrency, onAcquire: (ms) => acquireWaits.push(ms) });
    const warehouse = new PooledWarehouse({ pool });
    t = performance.now();
    await runConcurrently(concurrency, concurrency, (i) => getDeals(warehouse, [id(i)])); // warm-up: 8 logins
    const warmupMs = performance.now() - t;
    acquireWaits.length = 0;
    t = performance.now();
    await runConcurrently(queries, concurrency, (i) => warehouse.query(sql, [id(i)]));
    const pooledMs = performance.now() - t;
    const pooledLogins = server.stats().logins;
    await pool.close();

    return {
      bench: 'pool',
      queries,
      concurrency,
      login_latency_ms: loginLatencyMs,
      rtt_ms: rttMs,
      naive_ms: round(naiveMs, 1),
      pooled_ms: round(pooledMs, 1),
      pool_warmup_ms: round(warmupMs, 1),
      speedup: round(naiveMs / pooledMs, 1),
      speedup_incl_warmup: round(naiveMs / (pooledMs + warmupMs), 1),
      acquire_p50_ms: round(percentile(acquireWaits, 50), 3),
      acquire_p99_ms: round(percentile(acquireWaits, 99), 3),
      logins_naive: naiveLogins,
      logins_pooled: pooledLogins,
    };
  } finally {
    await server.close();
  }
}
