import type { LocalWarehouse } from 'local-snowflake';
import { CircuitBreaker, PooledWarehouse, WarehousePool } from '../src/pool';
import { CircuitOpenError, PoolAcquireTimeoutError, type WarehouseError, WarehouseTimeoutError } from '../src/warehouse/errors';
import { waitUntil } from './helpers/wait';
import { connectorFor, pooledClient, startTestWarehouse } from './helpers/warehouse';

/**
 * The pool's acquire timeout under exhaustion, over the real driver: every session is held by a real
 * long statement (`SYSTEM$WAIT`, which the local warehouse really waits out and really cancels), so a
 * further call waits for a session and gets a typed error; and an exhausted pool is not a warehouse
 * failure, so it never opens the circuit.
 */

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());
afterEach(() => {
  server.setFault({ mode: 'none' });
  server.setLatency({ loginMs: 0, queryMs: 0 });
});

/**
 * Borrows every session of `pool` with a 60 s `SYSTEM$WAIT` each; `release()` cancels them (the
 * statements are aborted, their sessions destroyed) and waits for the calls to end.
 */
async function holdEverySession(pool: WarehousePool, warehouse: PooledWarehouse): Promise<{ release(): Promise<void> }> {
  const abort = new AbortController();
  const max = pool.stats().max;
  const holds = Array.from({ length: max }, () =>
    warehouse.query('SELECT SYSTEM$WAIT(60)', [], { signal: abort.signal, timeoutMs: 90_000, label: 'hold' }).catch((e: unknown) => e),
  );
  await waitUntil('every session borrowed by a running SYSTEM$WAIT', () => pool.stats().borrowed === max && server.stats().queries >= max, {
    timeoutMs: 20_000,
  });
  return {
    async release() {
      abort.abort();
      const ended = await Promise.all(holds);
      // The holds end because they were cancelled, not because they finished (which would mean they never held).
      for (const e of ended) expect((e as WarehouseError).code).toBe('FLEET_ABORTED');
    },
  };
}

describe('warehouse pool: acquire timeout under exhaustion', () => {
  it('a call that finds every session borrowed fails with PoolAcquireTimeoutError (exhausted), and nothing is sent', async () => {
    const { pool, warehouse } = pooledClient(server, { max: 2, acquireTimeoutMs: 300 }, { retries: 0 });
    try {
      server.resetStats();
      const held = await holdEverySession(pool, warehouse);
      const sent = server.stats().queries;
      const err = await warehouse.query('SELECT 1 AS X').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolAcquireTimeoutError);
      expect(err).toMatchObject({ exhausted: true, transient: true, code: 'FLEET_POOL_TIMEOUT', waitedMs: 300 });
      expect((err as Error).message).toMatch(/all 2 sessions are borrowed.*pool exhausted/);
      expect(server.stats().queries).toBe(sent);
      await held.release();
      // The pool recovers: the next call gets a (new) session.
      await expect(warehouse.query('SELECT 1 AS X')).resolves.toEqual([{ X: 1 }]);
    } finally {
      await pool.close();
    }
  });

  it('a call whose own deadline passes while it waits for a session gets the same typed error', async () => {
    const { pool, warehouse } = pooledClient(server, { max: 1, acquireTimeoutMs: 30_000 }, { retries: 0, timeoutMs: 300 });
    try {
      const held = await holdEverySession(pool, warehouse);
      const err = await warehouse.query('SELECT 1 AS X').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolAcquireTimeoutError);
      expect(err).toMatchObject({ exhausted: true, waitedMs: 300 });
      await held.release();
    } finally {
      await pool.close();
    }
  });

  it('N acquire timeouts leave the breaker closed; N real warehouse failures open it', async () => {
    const N = 3;
    const breaker = new CircuitBreaker({ threshold: N, resetMs: 60_000 });
    const { pool, warehouse } = pooledClient(server, { max: 2, acquireTimeoutMs: 200 }, { retries: 0, breaker });
    try {
      const held = await holdEverySession(pool, warehouse);
      for (let i = 0; i < N; i++) await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(PoolAcquireTimeoutError);
      expect(breaker.state).toBe('closed');
      expect(breaker.opens).toBe(0);
      await held.release();

      // The warehouse's own failure: statements that run past their deadline.
      server.setLatency({ queryMs: 2_000 });
      for (let i = 0; i < N; i++) {
        await expect(warehouse.query('SELECT 1 AS X', [], { timeoutMs: 300 })).rejects.toBeInstanceOf(WarehouseTimeoutError);
      }
      expect(breaker.state).toBe('open');
      await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(CircuitOpenError);
    } finally {
      await pool.close();
    }
  });

  it('an exhausted pool does not spend the probe of a half-open circuit: it stays open', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ threshold: 1, resetMs: 1_000, now: () => now });
    const { pool, warehouse } = pooledClient(server, { max: 1, acquireTimeoutMs: 200 }, { retries: 0, breaker });
    try {
      const held = await holdEverySession(pool, warehouse);
      breaker.failure(new Error('warehouse down'));
      now += 1_000;
      expect(breaker.state).toBe('half-open');
      await expect(warehouse.query('SELECT 1 AS X')).rejects.toBeInstanceOf(PoolAcquireTimeoutError);
      // Not closed by a probe that never reached the warehouse, and still carrying the real reason.
      expect(breaker.state).toBe('open');
      expect((breaker.lastError as Error).message).toBe('warehouse down');
      await held.release();
      now += 1_000;
      await expect(warehouse.query('SELECT 1 AS X')).resolves.toEqual([{ X: 1 }]);
      expect(breaker.state).toBe('closed');
    } finally {
      await pool.close();
    }
  });

  it('an acquire timeout while logins fail is the warehouse failing: it names the login error and counts', async () => {
    const breaker = new CircuitBreaker({ threshold: 2, resetMs: 60_000 });
    const pool = new WarehousePool({ connector: connectorFor(server, 'wrong password'), min: 0, max: 2, acquireTimeoutMs: 300 });
    const warehouse = new PooledWarehouse({ pool, retries: 0, breaker });
    try {
      for (let i = 0; i < 2; i++) {
        const err = await warehouse.query('SELECT 1 AS X').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PoolAcquireTimeoutError);
        expect(err).toMatchObject({ exhausted: false });
        expect((err as Error).message).toMatch(/last login error/);
      }
      expect(breaker.state).toBe('open');
    } finally {
      await pool.close();
    }
  });
});
