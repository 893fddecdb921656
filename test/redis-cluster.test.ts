import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type RunningFleet, startFleet } from '../src/app/fleet';
import { closeRedis, createRedis, dropRedis, type RedisClient } from '../src/app/redis';
import { freePort } from '../src/app/redis-server';
import { jsonCodec, TieredCache } from '../src/cache';
import { loadConfig } from '../src/config';
import type { EmbeddingResult } from '../src/contracts/embedding';
import { createProducer, type JobHandle } from '../src/producers';
import { LuaCommand } from '../src/redis-lua/lua-command';
import { createLogger } from '../src/telemetry/logger';
import { countIndexEffects, faultReplicaEnv, reportFault, startReplica } from './helpers/faults';
import { launchFleet } from './helpers/processes';
import { uniquePrefix } from './helpers/redis';
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * The fleet on a real Redis Cluster, reached by configuration alone (REDIS_CLUSTER_NODES): three masters and
 * three replicas on loopback (test/helpers/redis-cluster.ts), a short cluster-node-timeout so a dead master is
 * failed over in seconds. The library, `fleet up`, every worker role, and a master SIGKILLed under load.
 */
/**
 * The failover's timing: cluster-node-timeout (how long a silent master takes to be failed over) and the
 * workers' lock. CI runs 2 s and 2 s (a lock shorter than the failover: the jobs held at the kill run again,
 * and their effects must still happen once); by hand e.g. FLEET_CLUSTER_NODE_TIMEOUT_MS=15000 (Redis's
 * default) FLEET_CLUSTER_LOCK_MS=30000 (the fleet's).
 */
const NODE_TIMEOUT_MS = Number(process.env.FLEET_CLUSTER_NODE_TIMEOUT_MS || 2_000);
const LOCK_MS = Number(process.env.FLEET_CLUSTER_LOCK_MS || 2_000);

let cluster: TestCluster;
let warehouse: LocalWarehouse;
let dir: string;

beforeAll(async () => {
  [cluster, warehouse] = await Promise.all([startRedisCluster({ nodeTimeoutMs: NODE_TIMEOUT_MS }), startTestWarehouse({ deals: 200, queryLatencyMs: 50 })]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-cluster-test-'));
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await warehouse?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A queue prefix of its own for one test, with the hash tag a cluster needs. */
const taggedPrefix = (name: string) => `{${uniquePrefix(name)}}`;

const QUESTION = 'Which enterprise deals are at risk this quarter, and why?';

describe('Redis Cluster, by configuration (REDIS_CLUSTER_NODES)', () => {
  it('gives a cluster client: Lua scripts, pipelines, the cache (pub/sub invalidation, a clear that scans every master)', async () => {
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds });
    expect(cfg.cache.keyPrefix).toBe('{fleet}:cache');
    const a = createRedis(cfg.redis);
    const b = createRedis(cfg.redis);
    const caches: TieredCache<string>[] = [];
    try {
      if (!(a instanceof Cluster)) throw new Error('REDIS_CLUSTER_NODES must give an ioredis Cluster');
      const tag = taggedPrefix('lua');
      const incrBoth = new LuaCommand('fleetClusterIncrBoth', `return { redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2]) }`);
      expect(await incrBoth.run(a, [`${tag}:a`, `${tag}:b`], [])).toEqual([1, 1]);
      incrBoth.defineOn(a);
      const p = a.pipeline();
      incrBoth.queue(p, [`${tag}:a`, `${tag}:b`], []);
      p.get(`${tag}:a`);
      expect(await p.exec()).toEqual([
        [null, [2, 2]],
        [null, '2'],
      ]);
      expect(await a.nodes('master')[0].call('CLUSTER', 'INFO')).toMatch(/cluster_state:ok/);

      const prefix = `${taggedPrefix('cache')}:cache`;
      // A generous L2 deadline: this checks what a cluster does, not how fast a busy test machine answers.
      const [ca, cb] = [a, b].map(
        (redis, i) => new TieredCache<string>({ redis, namespace: 'deal', prefix, codec: jsonCodec(), instanceId: `cache-${i}`, l2TimeoutMs: 5_000 }),
      );
      caches.push(ca, cb);
      await Promise.all([ca.ready(), cb.ready()]);
      const keys = Array.from({ length: 40 }, (_, i) => `D-${i}`);
      // A write publishes its keys' invalidation (through the cluster, to the other client's subscription on any node).
      await ca.setMany(keys.map((k) => [k, `a:${k}`]));
      await waitUntil('the other cache to hear the first write', () => cb.stats().invalidationsReceived === 40);
      await cb.getMany(keys, async () => {
        throw new Error('every key is in L2');
      });
      expect(cb.stats()).toMatchObject({ l2Hits: 40, misses: 0 });
      expect([cb.peek('D-1'), cb.peek('D-2')]).toEqual(['a:D-1', 'a:D-2']);
      await ca.set('D-1', 'updated');
      await waitUntil('the other cache to hear the second write', () => cb.stats().invalidationsReceived === 41);
      expect([cb.peek('D-1'), cb.peek('D-2')]).toEqual([undefined, 'a:D-2']);
      expect(await ca.clear()).toBe(40);
    } finally {
      for (const c of caches) await c.close();
      await closeRedis(a);
      await closeRedis(b);
    }
  });

  it('a cluster client waiting for nodes that are all away is dropped at once: its queued commands fail (shutdown with Redis down)', async () => {
    const away = `127.0.0.1:${await freePort()}`;
    const redis = createRedis(loadConfig({ REDIS_CLUSTER_NODES: away }).redis);
    redis.on('error', () => undefined);
    await waitUntil('the client to wait for a reconnect', () => redis.status === 'reconnecting');
    const queued = redis.get('{fleet}:x').then(
      () => 'answered',
      (err: Error) => err.message,
    );
    dropRedis(redis);
    expect(await queued).toBe('None of startup nodes is available');
    expect(redis.status).toBe('end');
  });

  it('the producer library enqueues embeddings, deal batches and a workflow; in-process workers answer them', async () => {
    const prefix = taggedPrefix('lib');
    const cfg = loadConfig({
      REDIS_CLUSTER_NODES: cluster.seeds,
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: warehouse.url,
      POOL_MIN: '0',
      POOL_MAX: '4',
      INDEX_SNAPSHOT_DIR: path.join(dir, 'lib-index'),
      LOG_LEVEL: 'error',
    });
    let fleet: RunningFleet | undefined;
    const connection = createRedis(cfg.redis);
    const producer = createProducer({ connection, prefix });
    try {
      fleet = await startFleet(cfg, {
        roles: ['embeddings', 'deals', 'flows'],
        embeddedRedis: false,
        embeddedWarehouse: false,
        logger: createLogger({ level: 'error', secrets: cfg.secrets }),
      });
      const texts = Array.from({ length: 30 }, (_, i) => `cluster note ${i}: renewal risk`);
      const embedded = await Promise.all((await producer.embed(texts)).map((h) => h.result({ timeoutMs: 30_000 })));
      expect(embedded.map((r) => r.dims)).toEqual(texts.map(() => 768));
      const insights = await (await producer.dealInsights(['D-1', 'D-2', 'D-404040'])).result({ timeoutMs: 30_000 });
      expect(insights.deals.map((d) => d.found)).toEqual([true, true, false]);
      const report = await (await producer.workflow(QUESTION, { asOf: '2026-11-25T00:00:00Z' })).result({ timeoutMs: 60_000 });
      expect(report.sourcesUsed).toEqual(['hubspot', 'gong', 'slack', 'linear']);
      expect(report.markdown).toMatch(/^# Which enterprise deals are at risk/);
    } finally {
      await producer.close();
      await closeRedis(connection);
      await fleet?.close();
    }
  }, 90_000);

  it('`fleet up` with REDIS_CLUSTER_NODES and the local warehouse accepts POST /v1/embeddings and the jobs complete; exit 0 on SIGTERM', async () => {
    const up = launchFleet(['up'], {
      env: {
        REDIS_CLUSTER_NODES: cluster.seeds,
        REDIS_URL: '',
        FLEET_QUEUE_PREFIX: taggedPrefix('up'),
        PORT: '0',
        LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
        LOCAL_WAREHOUSE_DEALS: '200',
        INDEX_SNAPSHOT_DIR: path.join(dir, 'up-index'),
        LOG_LEVEL: 'warn',
      },
    });
    try {
      const out = await up.logged('Ctrl-C stops everything', 60_000);
      expect(out).toContain('(Redis Cluster)');
      expect(out).toContain(`REDIS_CLUSTER_NODES=${cluster.seeds}`);
      expect(out).not.toContain('private redis-server');
      const api = /http api\s+(http:\/\/\S+)/.exec(out)![1];
      const token = /api token\s+(\S+)/.exec(out)![1];
      const res = await fetch(`${api}/v1/embeddings?waitMs=20000`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ texts: ['renewal is at risk on the cluster', 'pricing call went well on the cluster'] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { jobs: { state: string; result: { dims: number } }[] };
      expect(body.jobs.map((j) => [j.state, j.result.dims])).toEqual([
        ['completed', 768],
        ['completed', 768],
      ]);
    } finally {
      up.child.kill('SIGTERM');
    }
    expect(await up.exited).toBe(0);
    expect(up.output()).not.toMatch(/CROSSSLOT|"level":50/);
  }, 90_000);

  it('each worker role starts on the cluster and exits 0 on SIGTERM', async () => {
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_URL: '',
      FLEET_QUEUE_PREFIX: taggedPrefix('roles'),
      SNOWFLAKE_ACCESS_URL: warehouse.url,
      POOL_MIN: '0',
      POOL_MAX: '2',
      INDEX_SNAPSHOT_DIR: path.join(dir, 'roles-index'),
    };
    const roles = ['embeddings', 'deals', 'flows', 'index', 'search'] as const;
    const started = roles.map((role) => ({
      role,
      p: startReplica(env, role),
      ready: role === 'index' ? 'index builder started' : 'worker started',
    }));
    try {
      await Promise.all(started.map((s) => s.p.logged(s.ready, 60_000)));
      const stops = await Promise.all(
        started.map(async (s) => {
          const t0 = Date.now();
          return { role: s.role, code: await s.p.stop(20_000), ms: Date.now() - t0 };
        }),
      );
      process.stdout.write(`roles on the cluster, SIGTERM to exit: ${stops.map((s) => `${s.role} ${s.ms} ms`).join(', ')}\n`);
      expect(stops.map((s) => [s.role, s.code])).toEqual(roles.map((r) => [r, 0]));
      for (const s of started) expect({ role: s.role, errors: s.p.output().match(/CROSSSLOT|"level":50.*/g) }).toEqual({ role: s.role, errors: null });
    } finally {
      for (const s of started) await s.p.kill('SIGKILL');
    }
  }, 120_000);

  it('failover: SIGKILL the master of the {fleet} slot under load; its replica takes over, every accepted job completes once', async () => {
    const prefix = '{fleet}';
    const master = await cluster.masterOf(prefix);
    const replica = (await cluster.topology()).find((n) => n.masterId === master.id);
    expect(replica).toBeDefined();
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_URL: '',
      ...faultReplicaEnv(prefix, warehouse.url, { WORKER_MAX_STALLED_COUNT: '20', WORKER_LOCK_DURATION_MS: String(LOCK_MS), LOG_LEVEL: 'info' }),
    };
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds });
    const connection: RedisClient = createRedis(cfg.redis);
    const producerErrors: string[] = [];
    const producer = createProducer({ connection, prefix, onError: (err) => producerErrors.push(err.message) });
    const queue = producer.queue('embeddings');
    const worker = startReplica(env);
    const handles: JobHandle<EmbeddingResult>[] = [];
    let refused = 0;
    let buffered = 0;
    let n = 0;
    const enqueue = async (count: number) => {
      const texts = Array.from({ length: count }, () => `cluster failover note ${n++}: renewal risk for account ${n % 97}`);
      try {
        const hs = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'cluster-failover', id: `doc-${n - count + i}` })) });
        buffered += hs.filter((h) => h.buffered).length;
        handles.push(...hs);
      } catch {
        refused += count;
      }
    };
    try {
      await worker.logged('worker started', 60_000);
      await enqueue(2_000);
      await waitUntil(
        'the worker to be mid-run',
        async () => {
          const c = await queue.getJobCounts('completed', 'active');
          return c.completed >= 300 && c.active > 0;
        },
        { timeoutMs: 60_000, everyMs: 20 },
      );
      const atKill = await queue.getJobCounts('completed', 'active', 'waiting', 'prioritized');
      const killedAt = Date.now();
      await cluster.nodes.find((x) => x.port === master.port)!.server.kill('SIGKILL');
      // The producer keeps enqueueing through the failover: 10 calls of 100 texts, one every 300 ms.
      const during = (async () => {
        for (let i = 0; i < 10; i++) {
          await Promise.all([enqueue(100), new Promise((r) => setTimeout(r, 300))]);
        }
        return Date.now() - killedAt;
      })();
      const promoted = await waitUntil(
        'the replica to take over the {fleet} slot',
        async () => {
          const nodes = await cluster.topology(replica!.port).catch(() => []);
          return nodes.some((x) => x.port === replica!.port && x.role === 'master') && Date.now();
        },
        { timeoutMs: 30_000 + 3 * NODE_TIMEOUT_MS, everyMs: 50 },
      );
      const failoverMs = promoted - killedAt;
      const enqueuedBy = await during;
      expect((await cluster.masterOf(prefix)).port).toBe(replica!.port);

      const accepted = handles.length;
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
      const drainedMs = Date.now() - killedAt;
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized');
      const effects = await countIndexEffects(connection, prefix);
      const jobs = await queue.getJobs(['completed'], 0, accepted);
      const reRun = jobs.filter((j) => j.stalledCounter > 0 || j.attemptsStarted > 1).length;
      // What the worker's log said about Redis (the dependency log: one line when it goes, one when it is back).
      const redisLines = worker
        .output()
        .split('\n')
        .filter((l) => l.includes('"dependency":"redis"'))
        .map((l) => (JSON.parse(l) as { msg: string }).msg.split(';')[0]);
      reportFault({
        fault: `Redis Cluster: SIGKILL the master of the {fleet} slot under load (cluster-node-timeout ${NODE_TIMEOUT_MS / 1000} s, lock ${LOCK_MS / 1000} s)`,
        accepted,
        completed: counts.completed,
        failed: counts.failed,
        duplicatedEffects: effects.duplicated,
        detail:
          `replica promoted ${failoverMs} ms after the kill; ${atKill.completed} completed and ${atKill.active} active at the kill; ` +
          `${refused} enqueues refused, ${buffered} buffered; 1,000 enqueued during the failover in ${enqueuedBy} ms; all done ${drainedMs} ms after the kill; ` +
          `${reRun} jobs ran again; ${producerErrors.length} producer notices; worker's Redis log: ${redisLines.length ? redisLines.join(' / ') : 'nothing'}`,
      });

      expect(refused).toBe(0);
      expect(accepted).toBe(3_000);
      expect(results.every((r) => r.dims === 768)).toBe(true);
      expect(counts).toEqual({ completed: accepted, failed: 0, active: 0, waiting: 0, delayed: 0, prioritized: 0 });
      expect({ jobs: effects.jobs, entries: effects.entries, duplicated: effects.duplicated }).toEqual({ jobs: accepted, entries: accepted, duplicated: 0 });
    } finally {
      await worker.stop();
      await producer.close();
      await closeRedis(connection);
    }
  }, 240_000);
});
