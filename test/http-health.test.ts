import IORedis from 'ioredis';
import { freePort, type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { QUEUES } from '../src/contracts/queues';
import { buildApi, readinessChecks, redisPing, startHealthServer } from '../src/http';
import { createProducer } from '../src/producers';
import { createMetricsRegistry } from '../src/telemetry';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

describe('health: /healthz and /readyz', () => {
  it('worker health server: 503 naming Redis while nothing listens on its port, 200 once a redis-server starts there', async () => {
    const port = await freePort();
    // Retry quickly so the test does not wait for ioredis' backoff.
    const redis = new IORedis({ host: '127.0.0.1', port, maxRetriesPerRequest: null, retryStrategy: () => 100, lazyConnect: false });
    redis.on('error', () => undefined);
    let warehouseUp = true;
    const registry = createMetricsRegistry();
    const server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      readiness: readinessChecks({ redis: redisPing(redis), warehouse: async () => warehouseUp }, { timeoutMs: 1_000 }),
      metrics: registry.endpoint,
    });
    let privateRedis: PrivateRedis | undefined;
    try {
      const live = await fetch(`${server.url}/healthz`);
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: 'ok' });

      const down = await fetch(`${server.url}/readyz`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: 'not ready', checks: { redis: false, warehouse: true }, failed: ['redis'] });
      // liveness does not depend on Redis
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

      privateRedis = await startPrivateRedis({ port });
      const ready = await waitUntil(
        '/readyz to answer 200',
        async () => {
          const r = await fetch(`${server.url}/readyz`);
          const answer = { status: r.status, body: await r.json() };
          return r.status === 200 && answer;
        },
        { timeoutMs: 20_000, everyMs: 100 },
      );
      expect(ready).toEqual({ status: 200, body: { status: 'ready', checks: { redis: true, warehouse: true } } });

      warehouseUp = false;
      const noWarehouse = await fetch(`${server.url}/readyz`);
      expect(noWarehouse.status).toBe(503);
      expect(((await noWarehouse.json()) as { failed: string[] }).failed).toEqual(['warehouse']);

      const metrics = await fetch(`${server.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect((await fetch(`${server.url}/nothing`)).status).toBe(404);
    } finally {
      await server.close();
      redis.disconnect();
      await privateRedis?.stop();
      await registry.shutdown();
    }
  });

  it('a check that hangs or throws fails only itself; a readiness function that throws is a 503', async () => {
    const check = readinessChecks(
      {
        hangs: () => new Promise(() => undefined),
        throws: async () => {
          throw new Error('no');
        },
        ok: async () => 'fine',
      },
      { timeoutMs: 50 },
    );
    expect(await check()).toEqual({ hangs: false, throws: false, ok: true });
    const server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      readiness: async () => {
        throw new Error('broken check');
      },
    });
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toBe('broken check');
    } finally {
      await server.close();
    }
  });

  it('the API serves the same routes without authentication', async () => {
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix: uniquePrefix('http-health') });
    let warehouseUp = false;
    const app = await buildApi({
      producer,
      queues: [producer.queue(QUEUES.embeddings)],
      tokens: ['health-token-0123456789abc'],
      readiness: readinessChecks({ redis: redisPing(redis), warehouse: async () => warehouseUp }),
    });
    try {
      await redis.ping();
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const down = await app.inject({ method: 'GET', url: '/readyz' });
      expect(down.statusCode).toBe(503);
      expect(down.json()).toEqual({ status: 'not ready', checks: { redis: true, warehouse: false }, failed: ['warehouse'] });
      warehouseUp = true;
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      // no metrics endpoint given: no route
      expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    } finally {
      await app.close();
      await producer.close();
      await redis.quit();
    }
  });

  it('refuses a bad port', async () => {
    await expect(startHealthServer({ port: -1 })).rejects.toThrow(/option `port` must be an integer from 0 to 65535, got -1/);
  });
});
