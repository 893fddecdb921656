import type { LocalWarehouse } from 'local-snowflake';
import { createProducer } from '../src/producers';
import { testRedis, uniquePrefix } from './helpers/redis';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';
import { startDealWorker } from './helpers/workers';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());

describe('deal-batch jobs end to end', () => {
  it('returns insights per deal, unknown ids as "not found" entries, and coalesces concurrent jobs', async () => {
    const prefix = uniquePrefix('deals');
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const { pool, warehouse } = pooledClient(server);
    const worker = startDealWorker(warehouse, prefix, { maxWaitMs: 50 });
    try {
      server.resetStats();
      const handles = await Promise.all(
        Array.from({ length: 10 }, (_, j) => producer.dealInsights([...Array.from({ length: 20 }, (_, i) => `D-${j * 20 + i + 1}`), `D-9999${j}`])),
      );
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
      expect(server.stats().queries).toBeLessThanOrEqual(3);
      const first = results[0];
      expect(first.requested).toBe(21);
      expect(first.found).toBe(20);
      expect(first.deals[20]).toEqual({ id: 'D-99990', found: false, error: 'not found' });
      const d1 = first.deals[0];
      expect(d1.found).toBe(true);
      if (d1.found) {
        expect(d1.deal.id).toBe('D-1');
        expect(d1.figures.amountBand).toMatch(/small|mid|large|enterprise|unknown/);
        expect(typeof d1.figures.daysInStage === 'number' || d1.figures.daysInStage === null).toBe(true);
      }
      expect(first.batches.length).toBeGreaterThanOrEqual(1);
    } finally {
      await worker.close();
      await producer.close();
      await pool.close();
      await redis.quit();
    }
  });
});
