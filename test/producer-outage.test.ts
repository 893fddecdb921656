import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { BufferFullError, EnqueueDroppedError, EnqueueOutcomeUnknownError, RedisUnavailableError } from '../src/contracts/errors';
import { createProducer, idempotentJobId, type Producer, type ProducerOptions } from '../src/producers';
import { createMetricsRegistry } from '../src/telemetry/prometheus';
import { uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * The producer through a Redis outage: its own redis-server (AOF on, so a restart keeps what was written),
 * stopped and started again on the same port by each test. While it is away, enqueues wait in the bounded
 * buffer and are flushed in order with their ids on reconnect; past the bound, or with buffering off, calls
 * fail at once and nothing appears later.
 */
let dir: string;
let server: PrivateRedis | undefined;
let port: number;
const open: { producer: Producer; redis: Redis }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-producer-outage-'));
  server = await startPrivateRedis({ appendOnly: true, dir });
  port = server.port;
});
afterEach(async () => {
  if (!server) server = await startPrivateRedis({ appendOnly: true, dir, port });
  for (const { producer, redis } of open.splice(0)) {
    await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
    redis.disconnect();
  }
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function redisDown(): Promise<void> {
  await server?.stop();
  server = undefined;
}
async function redisUp(): Promise<void> {
  server = await startPrivateRedis({ appendOnly: true, dir, port });
}

/** A producer on its own connection, as a service holds one (reconnects forever). */
async function producerFor(name: string, extra: Partial<ProducerOptions> = {}) {
  const redis = new IORedis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  const errors: Error[] = [];
  const prefix = uniquePrefix(name);
  const producer = createProducer({ connection: redis, prefix, onError: (e) => errors.push(e), ...extra });
  open.push({ producer, redis });
  await waitUntil('the producer connection to be ready', () => redis.status === 'ready');
  return { producer, redis, prefix, errors };
}

/** A plain connection for looking at what reached Redis. */
async function inspect<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new IORedis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

describe('producer outage buffer: Redis away', () => {
  it('buffers enqueues while Redis is down and flushes them in order, with their ids, on reconnect', async () => {
    const { producer, redis, prefix, errors } = await producerFor('buffer-flush');
    const before = await producer.embed('sent while Redis is up');
    expect(before.buffered).toBe(false);

    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    const one = await producer.embed('buffered one', { idempotencyKey: 'note-1' });
    const many = await producer.embed(['buffered two', 'buffered three']);
    const deal = await producer.dealInsights(['D-1', 'D-2']);
    const wf = await producer.workflow('Which deals are at risk?', { idempotencyKey: 'wf-1' });
    const again = await producer.embed('buffered one', { idempotencyKey: 'note-1' });
    for (const h of [one, ...many, deal, wf, again]) expect(h.buffered).toBe(true);
    expect(one.id).toBe(idempotentJobId('embeddings', 'note-1'));
    expect(again.id).toBe(one.id);
    expect(producer.stats()).toMatchObject({ connected: false, bufferedJobs: 6, flushedJobs: 0, droppedJobs: 0 });
    expect([producer.isBuffered('embeddings', one.id), producer.isBuffered('workflows', wf.id), producer.isBuffered('deals', one.id)]).toEqual([
      true,
      true,
      false,
    ]);
    // onError hears of each buffered call, with where Redis was and how many are held.
    expect(errors.at(-1)?.message).toMatch(
      new RegExp(
        `^Redis is unreachable at redis://127\\.0\\.0\\.1:${port} \\(.+\\); 1 job\\(s\\) buffered in memory \\(6 in all\\), sent in order when it is back$`,
      ),
    );

    await redisUp();
    await Promise.all([one, ...many, deal, wf, again].map((h) => h.persisted));
    expect(producer.stats()).toMatchObject({ connected: true, bufferedJobs: 0, flushedJobs: 6, droppedJobs: 0 });
    expect(producer.isBuffered('embeddings', one.id)).toBe(false);
    expect(redis.status).toBe('ready');

    const embeddings = producer.queue('embeddings');
    // FIFO: the waiting list holds them in the order they were enqueued (BullMQ LPUSHes, so newest first).
    const waiting = await inspect((r) => r.lrange(`${prefix}:embeddings:wait`, 0, -1));
    expect(waiting.reverse()).toEqual([before.id, one.id, many[0].id, many[1].id]);
    expect(await embeddings.count()).toBe(4); // the repeated idempotency key added nothing
    expect(await producer.queue('deals').getJobState(deal.id)).toBe('waiting');
    expect(await producer.queue('workflows').getJobState(wf.id)).toBe('waiting-children');
  });

  it('fails at once with BufferFullError past maxJobs or maxBytes; the refused call never appears', async () => {
    const { producer, prefix } = await producerFor('buffer-full', { buffer: { maxJobs: 3, maxBytes: 2_000 } });
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    const kept = await producer.embed(['a', 'b']);
    const tooMany = await producer.embed(['c', 'd']).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(BufferFullError);
    expect((tooMany as BufferFullError).message).toMatch(/buffer is full \(maxJobs 3\); 2 jobs were not enqueued/);
    expect((tooMany as BufferFullError).message).toContain(`redis://127.0.0.1:${port}`);
    const tooBig = await producer.embed('x'.repeat(3_000)).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(BufferFullError);
    expect((tooBig as BufferFullError).limit).toBe('maxBytes');
    expect(producer.stats().bufferedJobs).toBe(2);

    await redisUp();
    await Promise.all(kept.map((h) => h.persisted));
    expect(await inspect((r) => r.llen(`${prefix}:embeddings:wait`))).toBe(2);
  });

  it('with buffering off, an enqueue fails at once with RedisUnavailableError naming where Redis was looked for', async () => {
    const { producer, prefix } = await producerFor('no-buffer', { buffer: false });
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    const err = await producer.dealInsights(['D-1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(new RegExp(`^Redis is unreachable at redis://127\\.0\\.0\\.1:${port} \\(.+\\); nothing was enqueued$`));
    await redisUp();
    await waitUntil('the producer to reconnect', () => producer.stats().connected);
    expect(await inspect((r) => r.exists(`${prefix}:deals:wait`))).toBe(0);
    // and it works again once Redis is back
    expect((await producer.dealInsights(['D-1'])).buffered).toBe(false);
  });

  it('with buffering off, a bulk add cut by a lost connection says its outcome is unknown; a retry with the same key completes it, doubling nothing', async () => {
    const { producer, prefix } = await producerFor('cut-bulk', { buffer: false });
    const texts = Array.from({ length: 10_000 }, (_, i) => `cut bulk text ${i}`);
    const firstJob = `${prefix}:embeddings:${idempotentJobId('embeddings', 'cut-bulk#0')}`;
    const adding = producer.embed(texts, { idempotencyKey: 'cut-bulk' }).catch((e: unknown) => e);
    // Once Redis has run the first add, it stops running writes, so the call is part-done when Redis dies.
    await inspect(async (probe) => {
      await waitUntil('the first job of the bulk add to be in Redis', async () => (await probe.exists(firstJob)) === 1, { everyMs: 1 });
      await probe.client('PAUSE', 10_000, 'WRITE');
    });
    const child = server!.process;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    server = undefined;
    const err = await adding;
    expect(err).toBeInstanceOf(EnqueueOutcomeUnknownError);
    expect((err as EnqueueOutcomeUnknownError).jobIds).toHaveLength(10_000);
    expect((err as Error).message).toMatch(/some may have been enqueued; retry with the same idempotency key/);
    await redisUp();
    await waitUntil('the producer to reconnect', () => producer.stats().connected);
    // Jobs waiting: in the FIFO list or parked behind their tenant's slots (src/fairness).
    const waiting = () => inspect(async (r) => (await r.llen(`${prefix}:embeddings:wait`)) + (await r.zcard(`${prefix}:embeddings:prioritized`)));
    expect(await waiting()).toBeLessThan(10_000);
    await producer.embed(texts, { idempotencyKey: 'cut-bulk' });
    expect(await waiting()).toBe(10_000);
  });

  it('never buffers a search: it fails fast while Redis is down', async () => {
    const { producer } = await producerFor('search-fast');
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    await expect(producer.search({ text: 'renewal', k: 3 })).rejects.toBeInstanceOf(RedisUnavailableError);
    expect(producer.stats().bufferedJobs).toBe(0);
  });

  it('an aborted buffered enqueue is removed: its persisted rejects and it never appears', async () => {
    const { producer, prefix } = await producerFor('abort');
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    const ac = new AbortController();
    const dropped = await producer.embed('abandoned', { signal: ac.signal });
    const kept = await producer.embed('kept');
    ac.abort();
    await expect(dropped.persisted).rejects.toBeInstanceOf(EnqueueDroppedError);
    await expect(dropped.result({ timeoutMs: 1_000 })).rejects.toBeInstanceOf(EnqueueDroppedError);
    expect(producer.stats()).toMatchObject({ bufferedJobs: 1, droppedJobs: 1 });
    await redisUp();
    await kept.persisted;
    const ids = await inspect((r) => r.lrange(`${prefix}:embeddings:wait`, 0, -1));
    expect(ids).toEqual([kept.id]);
  });

  it('close() past its deadline drops what is still buffered and says how many; they never appear', async () => {
    const { producer, prefix } = await producerFor('close-drop');
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    const handles = await producer.embed(['one', 'two', 'three']);
    const outcome = await producer.close({ timeoutMs: 300 });
    expect(outcome).toEqual({ flushed: 0, dropped: 3, unknown: 0 });
    for (const h of handles) await expect(h.persisted).rejects.toThrow(/dropped before it reached Redis \(closed\)/);
    await redisUp();
    expect(await inspect((r) => r.keys(`${prefix}:*`))).toEqual([]);
  });

  it('close() flushes the buffer when Redis comes back within its deadline', async () => {
    const { producer, prefix } = await producerFor('close-flush');
    await redisDown();
    await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
    await producer.embed(['one', 'two']);
    const closing = producer.close({ timeoutMs: 20_000 });
    await redisUp();
    expect(await closing).toEqual({ flushed: 2, dropped: 0, unknown: 0 });
    expect(await inspect((r) => r.llen(`${prefix}:embeddings:wait`))).toBe(2);
  });

  it('reports the buffer on its meter: fleet_producer_buffered_jobs and fleet_producer_dropped_jobs', async () => {
    const registry = createMetricsRegistry();
    try {
      const { producer, prefix } = await producerFor('metrics', { meter: registry.meterProvider.getMeter('fleet-producer') });
      await redisDown();
      await waitUntil('the producer to see Redis gone', () => !producer.stats().connected);
      await producer.embed(['a', 'b', 'c']);
      const text = await registry.endpoint.render();
      expect(text).toMatch(new RegExp(`fleet_producer_buffered_jobs\\{prefix="${prefix}"[^}]*\\} 3\\n`));
      await producer.close({ timeoutMs: 100 });
      expect(await registry.endpoint.render()).toMatch(new RegExp(`fleet_producer_dropped_jobs_total\\{prefix="${prefix}"[^}]*\\} 3\\n`));
    } finally {
      await registry.shutdown();
    }
  });

  it('refuses bad buffer options, naming the option and the value', () => {
    const redis = new IORedis(`redis://127.0.0.1:${port}`, { lazyConnect: true });
    expect(() => createProducer({ connection: redis, buffer: { maxJobs: 0 } })).toThrow('option `buffer.maxJobs` must be an integer >= 1, got 0');
    expect(() => createProducer({ connection: redis, buffer: { maxBytes: 1.5 } })).toThrow('option `buffer.maxBytes` must be an integer >= 1, got 1.5');
    expect(() => createProducer({ connection: redis, buffer: 'big' as never })).toThrow('option `buffer` must be { maxJobs?, maxBytes? } or false, got big');
    redis.disconnect();
  });
});
