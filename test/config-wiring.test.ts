import { freePort } from '../src/app/redis-server';
import { Releasers } from '../src/app/releasers';
import { createWarehouseClient } from '../src/app/warehouse';
import { loadConfig } from '../src/config';
import { CircuitOpenError } from '../src/warehouse/errors';

/**
 * Settings that are easy to read into config and forget to hand on: each is checked where it acts. The job
 * options the CLI sets from configuration are checked in test/cli-config.test.ts (`npm test` only).
 */
describe('configuration reaches what it configures', () => {
  it("WAREHOUSE_BREAKER_THRESHOLD opens the process's circuit after that many failed calls", async () => {
    const cfg = loadConfig({
      WAREHOUSE_BREAKER_THRESHOLD: '2',
      WAREHOUSE_BREAKER_RESET_MS: '60000',
      WAREHOUSE_RETRIES: '0',
      WAREHOUSE_QUERY_TIMEOUT_MS: '500',
      POOL_ACQUIRE_TIMEOUT_MS: '500',
      POOL_MIN: '0',
    });
    const port = await freePort(); // nothing listens there: every call fails as transient
    const releasers = new Releasers();
    const { warehouse } = createWarehouseClient(
      cfg,
      { account: 'local', username: 'fleet', password: 'fleet', accessUrl: `http://127.0.0.1:${port}` },
      releasers,
    );
    try {
      for (let i = 0; i < 2; i++) {
        const err = await warehouse.query('SELECT 1').catch((e: unknown) => e);
        expect(err).not.toBeInstanceOf(CircuitOpenError);
      }
      await expect(warehouse.query('SELECT 1')).rejects.toBeInstanceOf(CircuitOpenError);
    } finally {
      await releasers.releaseAll();
    }
  });
});
