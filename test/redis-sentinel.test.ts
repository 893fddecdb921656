import type { Job } from 'bullmq';
import IORedis from 'ioredis';
import { closeRedis, createRedis, ensureRedis, RedisConnections, redisEnvOf } from '../src/app/redis';
import { freePort } from '../src/app/redis-server';
import { ConfigError, loadConfig } from '../src/config';
import type { EmbeddingResult } from '../src/contracts/embedding';
import { QUEUES } from '../src/contracts/queues';
import { createProducer, type JobHandle } from '../src/producers';
import { createLogger } from '../src/telemetry/logger';
import { dependencyLog } from '../src/telemetry/outage-log';
import { runWorker } from '../src/workers/run-worker';
import { captureLogs } from './helpers/logs';
import { startRedisSentinel, type TestSentinel } from './helpers/redis-sentinel';
import { waitUntil } from './helpers/wait';

/**
 * The fleet on Redis Sentinel, reached by configuration alone (REDIS_SENTINELS, REDIS_SENTINEL_MASTER,
 * REDIS_SENTINEL_PASSWORD): a primary, one replica and one sentinel on loopback (test/helpers/redis-sentinel.ts),
 * with passwords on the data servers and on the sentinel. The primary is SIGKILLed; the sentinel promotes the
 * replica and the same clients carry on there.
 */
const PASSWORD = 'data-secret-4417';
const SENTINEL_PASSWORD = 'sentinel-secret-9023';

let sentinel: TestSentinel;

beforeAll(async () => {
  sentinel = await startRedisSentinel({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, downAfterMs: 1_000, failoverTimeoutMs: 5_000 });
}, 30_000);

afterAll(async () => {
  await sentinel?.stop();
});

/** A logger writing JSON lines into memory, the passwords scrubbed as the fleet's are. */
const capture = () => captureLogs({ traceIds: false, secrets: [PASSWORD, SENTINEL_PASSWORD] });

/** The port of the server a connection is talking to, as that server reports it. */
async function serverPort(redis: IORedis): Promise<number> {
  return Number(/tcp_port:(\d+)/.exec(await redis.info('server'))![1]);
}

describe('config: Redis Sentinel (REDIS_SENTINELS)', () => {
  it('parses the sentinels, the master group (default mymaster) and the sentinel password (a secret)', () => {
    const c = loadConfig({ REDIS_SENTINELS: ' 10.0.0.1:26379, sentinel-1.redis:26380 ', REDIS_SENTINEL_PASSWORD: 'sentinel-pass' });
    expect(c.redis.sentinel).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-1.redis', port: 26380 },
      ],
      tls: false,
      master: 'mymaster',
      password: 'sentinel-pass',
    });
    expect(c.redis.cluster).toBeUndefined();
    expect(c.secrets).toContain('sentinel-pass');
    expect(loadConfig({ REDIS_SENTINELS: 'rediss://s-0:26379', REDIS_SENTINEL_MASTER: 'fleet' }).redis.sentinel).toMatchObject({ tls: true, master: 'fleet' });
    expect(loadConfig({}).redis.sentinel).toBeUndefined();
  });

  it('refuses a cluster or a fixed URL beside the sentinels, a sentinel password without sentinels, and a bad sentinel', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toEqual([
      expect.stringMatching(/^set only one of REDIS_SENTINELS and REDIS_CLUSTER_NODES/),
    ]);
    expect(problems({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_URL: 'redis://127.0.0.1:6379' })).toEqual([
      expect.stringMatching(/^set only one of REDIS_URL and REDIS_SENTINELS/),
    ]);
    expect(problems({ REDIS_SENTINEL_PASSWORD: 'forgotten' })).toEqual(['REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not']);
    expect(problems({ REDIS_SENTINELS: 'sentinel-without-port' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINELS="sentinel-without-port": .*is not host:port/),
    ]);
    // An empty REDIS_URL is unset (as a pod spec or a shell may leave it).
    expect(problems({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_URL: '' })).toEqual([]);
  });

  it('`fleet up` never starts a private redis-server for a Sentinel setup, and names the sentinels for other terminals', async () => {
    const cfg = loadConfig({ REDIS_SENTINELS: `127.0.0.1:${await freePort()}`, REDIS_SENTINEL_MASTER: 'fleet-primary' });
    const ensured = await ensureRedis(cfg.redis, createLogger({ level: 'silent' }));
    expect(ensured).toEqual({ settings: cfg.redis });
    expect(redisEnvOf(cfg.redis)).toBe(
      `${'REDIS_SENTINELS='}${cfg.redis.sentinel!.nodes[0].host}:${cfg.redis.sentinel!.nodes[0].port} REDIS_SENTINEL_MASTER=fleet-primary`,
    );
  });
});

describe('Redis Sentinel, by configuration (REDIS_SENTINELS)', () => {
  it('a one-shot client (the CLI: retryStrategy null) fails at once when no sentinel answers, instead of asking forever', async () => {
    const cfg = loadConfig({ REDIS_SENTINELS: `127.0.0.1:${await freePort()}` });
    const redis = createRedis(cfg.redis, { retryStrategy: () => null, lazyConnect: false });
    redis.on('error', () => undefined);
    try {
      await expect(redis.ping()).rejects.toThrow(/All sentinels are unreachable and retry is disabled|Connection is closed/);
    } finally {
      redis.disconnect();
    }
  });

  it('a master group the sentinels do not know is logged as an error naming their reply, not as an outage', async () => {
    const { logger, text } = capture();
    const redisLog = dependencyLog(logger, { name: 'redis', summaryEveryMs: 60_000 });
    const cfg = loadConfig({ REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_MASTER: 'no-such-group', REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD });
    const redis = new RedisConnections(cfg.redis, redisLog).create();
    try {
      const line = await waitUntil(
        'the error',
        () =>
          text()
            .split('\n')
            .find((l) => l.includes('"redis error"')),
        { timeoutMs: 10_000 },
      );
      expect(JSON.parse(line).err.message).toMatch(/^All sentinels are unreachable\. .*Last error: ERR No such master with that name$/);
      expect(redisLog.down).toBe(false);
    } finally {
      redis.disconnect();
      redisLog.close();
    }
  });

  it('producer and worker reach the primary through the sentinel, and follow it to the promoted replica after a SIGKILL; every job completes once', async () => {
    const cfg = loadConfig({
      REDIS_SENTINELS: sentinel.sentinels,
      REDIS_SENTINEL_MASTER: sentinel.name,
      REDIS_PASSWORD: PASSWORD,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      LOG_LEVEL: 'info',
    });
    const { logger, messages, text } = capture();
    const redisLog = dependencyLog(logger, { name: 'redis', summaryEveryMs: 60_000 });
    // The fleet's own factory, as every role, `fleet up` and the API use it.
    const connections = new RedisConnections(cfg.redis, redisLog);
    const producerConnection = connections.create();
    const workerConnection = connections.create();
    const probe = connections.create();
    if (!(producerConnection instanceof IORedis) || !(probe instanceof IORedis)) throw new Error('REDIS_SENTINELS must give an ioredis Redis');
    const prefix = '{fleet}';
    const runs = new Map<string, number>();
    const worker = runWorker({
      queue: QUEUES.embeddings,
      connection: workerConnection,
      prefix,
      concurrency: 20,
      processor: async (job: Job) => {
        runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
        return { ran: job.id };
      },
    });
    worker.on('error', () => undefined);
    const producer = createProducer({ connection: producerConnection, prefix, onError: () => undefined });
    const enqueue = (phase: string, n: number) =>
      producer.embed(Array.from({ length: n }, (_, i) => `${phase} note ${i}: renewal risk`)) as Promise<JobHandle<EmbeddingResult>[]>;
    const settle = async (handles: JobHandle<EmbeddingResult>[]) => Promise.all(handles.map((h) => h.result({ timeoutMs: 25_000 })));
    try {
      expect(await serverPort(probe)).toBe(sentinel.masterPort);
      const before = await enqueue('before', 40);
      await settle(before);
      expect(runs.size).toBe(40);
      // Everything of the first run is on the replica before the primary dies (replication is asynchronous).
      expect(Number(await sentinel.cli(sentinel.masterPort, 'WAIT', '1', '5000'))).toBe(1);

      expect(await sentinel.master.kill('SIGKILL')).toBe('SIGKILL');
      // Enqueued while the primary is gone and not yet replaced: held by the producer (or the client's queue) until the promotion.
      const during = await enqueue('during', 20);
      await sentinel.waitMaster(sentinel.replicaPort);
      const after = await enqueue('after', 40);
      const results = await settle([...during, ...after]);
      expect(results).toHaveLength(60);

      expect(await serverPort(producerConnection)).toBe(sentinel.replicaPort);
      expect(await serverPort(probe)).toBe(sentinel.replicaPort);
      const ids = [...before, ...during, ...after].map((h) => h.id);
      expect(new Set(ids).size).toBe(100);
      expect(ids.filter((id) => runs.get(id) !== 1)).toEqual([]);
      expect(runs.size).toBe(100);
      expect((await producer.queue(QUEUES.embeddings).getJobCounts('completed', 'failed', 'active', 'wait')).completed).toBe(100);
      // One outage, as the operators read it: one line when Redis went away, one when it was back; no error logged in full.
      expect(messages().filter((m) => m.startsWith('redis unavailable'))).toHaveLength(1);
      expect(messages().filter((m) => m === 'redis available again')).toHaveLength(1);
      expect(
        text()
          .split('\n')
          .filter((l) => l.includes('"redis error"')),
      ).toEqual([]);
      expect(text()).not.toContain(PASSWORD);
      expect(text()).not.toContain(SENTINEL_PASSWORD);
    } finally {
      await worker.close();
      await producer.close();
      for (const c of [producerConnection, workerConnection, probe]) await closeRedis(c);
      redisLog.close();
    }
  }, 60_000);
});
