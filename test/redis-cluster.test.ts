import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { type RunningFleet, startFleet } from '../src/app/fleet';
import { closeRedis, createRedis, dropRedis, type RedisClient } from '../src/app/redis';
import { freePort } from '../src/app/redis-server';
import { invalidateDeals, jsonCodec, TieredCache } from '../src/cache';
import { loadConfig } from '../src/config';
import type { DealInsightsResult } from '../src/contracts/deals';
import type { EmbeddingResult } from '../src/contracts/embedding';
import { QUEUES, type QueueName } from '../src/contracts/queues';
import { clusterSlot, parseShardCounts, shardCount, shardOfJobId, shardPrefix } from '../src/contracts/shards';
import { redisPing } from '../src/http';
import { createProducer, type JobHandle } from '../src/producers';
import { LuaCommand } from '../src/redis-lua/lua-command';
import { createLogger } from '../src/telemetry/logger';
import { countCompletedEvents, countIndexEffects, countLogRows, faultReplicaEnv, moreThanOnce, reportFault, startReplica } from './helpers/faults';
import { launchFleet } from './helpers/processes';
import { uniquePrefix } from './helpers/redis';
import { type SlotRange, startRedisCluster, type TestCluster } from './helpers/redis-cluster';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * The fleet on a real Redis Cluster, reached by configuration alone (REDIS_CLUSTER_NODES): three masters and
 * three replicas on loopback (test/helpers/redis-cluster.ts), a short cluster-node-timeout so a dead master is
 * failed over in seconds. The library, `fleet up`, every worker role, sharded queues (FLEET_QUEUE_SHARDS: each
 * shard's hash tag on its own master), and the master of one shard SIGKILLed under load.
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

/** The sharded layout of the sharded cases, as an operator writes it. */
const SHARDS = 'embeddings=3,deals=2';
const SHARD_COUNTS = parseShardCounts(SHARDS);
/** `fleet up` and the roles run in both layouts: one shard per queue (today's keys) and SHARDS. */
const LAYOUTS = [
  { name: 'one shard per queue', shards: '' },
  { name: `FLEET_QUEUE_SHARDS=${SHARDS}`, shards: SHARDS },
];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The port of the master serving `slot`, by CLUSTER SLOTS. */
function masterOfSlot(ranges: readonly SlotRange[], slot: number): number {
  const r = ranges.find((x) => slot >= x.from && slot <= x.to);
  if (!r) throw new Error(`no master serves slot ${slot}`);
  return r.master;
}

/** Each shard of `queue` under `prefix`: its prefix, its slot and the master serving that slot. */
const shardMasters = (ranges: readonly SlotRange[], prefix: string, queue: QueueName, n: number) =>
  range(n).map((shard) => {
    const p = shardPrefix(prefix, queue, shard);
    const slot = clusterSlot(p);
    return { shard, prefix: p, slot, master: masterOfSlot(ranges, slot) };
  });

/**
 * A queue prefix of its own for one test, whose SHARDS land on distinct masters (each embeddings shard on its
 * own, the two deals shards on two). `shardPrefix` aims a tag's shards apart round the slot space, so that holds
 * for nearly every tag (`{fleet}`'s is checked as it is), not all: a test about where keys go takes a tag for
 * which it does rather than the odd one whose shards sit near a master's edge.
 */
async function spreadPrefix(name: string): Promise<string> {
  const ranges = await cluster.slotRanges();
  for (let i = 0; i < 100; i++) {
    const prefix = taggedPrefix(name);
    const spread = (Object.entries(SHARD_COUNTS) as [QueueName, number][]).every(
      ([queue, n]) => new Set(shardMasters(ranges, prefix, queue, n).map((p) => p.master)).size === n,
    );
    if (spread) return prefix;
  }
  throw new Error(`no prefix for ${name} spread its shards over the masters in 100 tries`);
}

/**
 * Where a queue's shards are, read from the masters themselves: each master is SCANned for each shard's keys
 * (`<shard prefix>:<queue>:*`; a master holds only its own slots' keys). Every shard must have keys on the
 * master its slot names and none elsewhere, every job of `jobIds` must have its hash on its shard's master (the
 * shard its id names), and with several shards each is on a master of its own.
 */
async function expectShardsOnMasters(prefix: string, queue: QueueName, n: number, jobIds: readonly string[]): Promise<void> {
  const ranges = await cluster.slotRanges();
  const masters = [...new Set(ranges.map((r) => r.master))];
  const seen = await Promise.all(
    shardMasters(ranges, prefix, queue, n).map(async ({ shard, prefix: p, master }) => {
      const keys = await Promise.all(masters.map(async (m) => ({ m, keys: await cluster.scanKeys(m, `${p}:${queue}:*`) })));
      const own = new Set(keys.find((k) => k.m === master)!.keys);
      const ids = jobIds.filter((id) => shardOfJobId(id) === shard);
      return {
        shard,
        master,
        keys: own.size > 0,
        elsewhere: keys.filter((k) => k.m !== master).reduce((sum, k) => sum + k.keys.length, 0),
        jobs: ids.length > 0,
        jobsNotOnMaster: ids.filter((id) => !own.has(`${p}:${queue}:${id}`)),
      };
    }),
  );
  expect(seen).toEqual(seen.map(({ shard, master }) => ({ shard, master, keys: true, elsewhere: 0, jobs: true, jobsNotOnMaster: [] })));
  expect(new Set(seen.map((s) => s.master)).size).toBe(n);
}

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
      // A CRM update's invalidation counts both caches, whichever nodes their subscriptions live on
      // (PUBLISH alone counts the subscribers of the node that took it).
      expect(await invalidateDeals(a, ['D-2'], { prefix })).toEqual({ dealIds: ['D-2'], deleted: 1, receivers: 2 });
      await waitUntil('the other cache to drop D-2', () => cb.peek('D-2') === undefined);
      expect(await ca.clear()).toBe(39);
    } finally {
      for (const c of caches) await c.close();
      await closeRedis(a);
      await closeRedis(b);
    }
  });

  it("the cache's invalidation subscription moved by ioredis to another node: it is confirmed again, L1 cleared, and later writes are heard", async () => {
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds });
    const a = createRedis(cfg.redis);
    const b = createRedis(cfg.redis);
    const subscriber = createRedis(cfg.redis);
    const events: string[] = [];
    const caches: TieredCache<string>[] = [];
    try {
      const prefix = `${taggedPrefix('cache-move')}:cache`;
      const options = { namespace: 'deal', prefix, codec: jsonCodec<string>(), l2TimeoutMs: 5_000 };
      const ca = new TieredCache<string>({ ...options, redis: a, instanceId: 'writer' });
      const cb = new TieredCache<string>({ ...options, redis: b, subscriber, instanceId: 'reader', onEvent: (e) => events.push(e.type) });
      caches.push(ca, cb);
      await Promise.all([ca.ready(), cb.ready()]);
      await ca.setMany([['D-1', 'one']]);
      await waitUntil('the reader to hear the first write', () => cb.stats().invalidationsReceived === 1);
      await cb.getMany(['D-1'], async () => {
        throw new Error('D-1 is in L2');
      });
      expect(cb.peek('D-1')).toBe('one');
      // The node connection ioredis keeps the subscription on (an ioredis internal, read only here) is cut:
      // ioredis subscribes again on some node, the client stays 'ready', and nothing is emitted.
      const moved = (subscriber as unknown as { subscriber: { getInstance(): { options: { port: number } } } }).subscriber.getInstance();
      const node = cluster.nodes.find((n) => n.port === moved.options.port);
      expect(node).toBeDefined();
      const direct = createRedis({ url: `redis://127.0.0.1:${moved.options.port}` });
      try {
        await direct.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      } finally {
        await closeRedis(direct);
      }
      await waitUntil('the reader to confirm its subscription again', () => events.includes('resubscribed'), { timeoutMs: 15_000 });
      // What it may have missed meanwhile is gone from L1…
      expect(cb.peek('D-1')).toBeUndefined();
      // …and the subscription works on its new connection.
      const heard = cb.stats().invalidationsReceived;
      await ca.set('D-2', 'two');
      await waitUntil('the reader to hear a write after the move', () => cb.stats().invalidationsReceived > heard, { timeoutMs: 10_000 });
    } finally {
      for (const c of caches) await c.close();
      for (const c of [a, b, subscriber]) await closeRedis(c);
    }
  });

  it("/readyz's Redis check on a cluster asks the master of the fleet's own slot, not a node picked at random", async () => {
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds });
    const client = createRedis(cfg.redis);
    const key = `${cfg.queuePrefix}:readyz`;
    const owner = await cluster.masterOf(key);
    const existsCalls = async (port: number) => {
      const direct = createRedis({ url: `redis://127.0.0.1:${port}` });
      try {
        const stats = String(await direct.call('INFO', 'commandstats'));
        return Number(/cmdstat_exists:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      } finally {
        await closeRedis(direct);
      }
    };
    const masters = (await cluster.topology()).filter((n) => n.role === 'master' && !n.flags.includes('fail'));
    try {
      await waitUntil('the cluster client to be ready', () => client.status === 'ready');
      const check = redisPing(client, { clusterKey: key });
      const before = await Promise.all(masters.map((m) => existsCalls(m.port)));
      for (let i = 0; i < 5; i++) expect(await check()).toBe(true);
      const after = await Promise.all(masters.map((m) => existsCalls(m.port)));
      expect(masters.map((m, i) => ({ port: m.port, calls: after[i] - before[i] }))).toEqual(
        masters.map((m) => ({ port: m.port, calls: m.port === owner.port ? 5 : 0 })),
      );
    } finally {
      await closeRedis(client);
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

  it('sharded queues (FLEET_QUEUE_SHARDS=embeddings=3,deals=2): each shard of {fleet} hashes to a slot of its own master; clusterSlot is CLUSTER KEYSLOT', async () => {
    const askPort = cluster.nodes[0].port;
    const keyslot = async (key: string) => Number(await cluster.cli(askPort, 'CLUSTER', 'KEYSLOT', key));
    // The shards' prefixes, and keys with and without hash tags (Redis hashes only the first non-empty `{…}`).
    const keys = [
      ...[0, 1, 2].map((k) => `${shardPrefix('{fleet}', QUEUES.embeddings, k)}:embeddings:wait`),
      `${shardPrefix('{fleet}', QUEUES.deals, 1)}:deals:s1.j-00000000`,
      '{fleet}:index:log',
      'no-tag-at-all',
      'x{}{fleet}y',
      '{{fleet}}',
      'a{b}c{d}',
      '{fleet',
      'é{ünï}',
    ];
    const answered = await Promise.all(keys.map(async (key) => ({ key, slot: await keyslot(key) })));
    expect(keys.map((key) => ({ key, slot: clusterSlot(key) }))).toEqual(answered);

    // Where each shard lives: CLUSTER SLOTS (the masters' ranges) and CLUSTER NODES (cluster.masterOf) agree.
    const ranges = await cluster.slotRanges();
    expect(new Set(ranges.map((r) => r.master)).size).toBe(3);
    for (const [queue, n] of Object.entries(SHARD_COUNTS) as [QueueName, number][]) {
      const placed = shardMasters(ranges, '{fleet}', queue, n);
      const viaNodes = await Promise.all(placed.map((p) => cluster.masterOf(p.prefix)));
      expect(viaNodes.map((m) => [m.slot, m.port])).toEqual(placed.map((p) => [p.slot, p.master]));
      process.stdout.write(`${queue} shards on the cluster: ${placed.map((p) => `${p.prefix} slot ${p.slot} on :${p.master}`).join(', ')}\n`);
      // Shard 0 keeps the fleet's own prefix; the others are tags of their own, each on another master.
      expect(placed[0].prefix).toBe('{fleet}');
      expect(new Set(placed.map((p) => p.master)).size).toBe(n);
    }
  });

  describe.each(LAYOUTS)('with $name', ({ shards }) => {
    it('`fleet up` accepts POST /v1/embeddings and /v1/deals/insights, the jobs complete (on every shard, each on its own master) and are looked up by id; exit 0 on SIGTERM', async () => {
      const prefix = await spreadPrefix('up');
      const up = launchFleet(['up'], {
        env: {
          REDIS_CLUSTER_NODES: cluster.seeds,
          REDIS_URL: '',
          FLEET_QUEUE_PREFIX: prefix,
          FLEET_QUEUE_SHARDS: shards,
          PORT: '0',
          LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
          LOCAL_WAREHOUSE_DEALS: '200',
          INDEX_SNAPSHOT_DIR: path.join(dir, `up-index-${shards ? 'sharded' : 'one'}`),
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
        const call = async (method: string, route: string, body?: unknown) => {
          const res = await fetch(`${api}${route}`, {
            method,
            headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
            body: body ? JSON.stringify(body) : undefined,
          });
          return { status: res.status, body: (await res.json()) as { jobs: { id: string; state: string; result: Record<string, unknown> }[] } };
        };
        // Each request gets its own idempotency key from the API, which picks each job's shard: ask until every
        // shard has jobs (a handful of requests; bounded, so a producer that stuck to one shard fails here).
        const embedded: { id: string; state: string; dims: unknown }[] = [];
        const deals: { id: string; state: string; found: unknown }[] = [];
        const nE = shardCount(parseShardCounts(shards), QUEUES.embeddings);
        const nD = shardCount(parseShardCounts(shards), QUEUES.deals);
        for (let i = 0; i < 10 && new Set(embedded.map((j) => shardOfJobId(j.id))).size < nE; i++) {
          const texts = [0, 1, 2, 3].map((t) => `renewal is at risk on the cluster ${i}.${t}`);
          const res = await call('POST', '/v1/embeddings?waitMs=20000', { texts });
          expect(res.status).toBe(200);
          embedded.push(...res.body.jobs.map((j) => ({ id: j.id, state: j.state, dims: j.result.dims })));
        }
        for (let i = 0; i < 20 && new Set(deals.map((j) => shardOfJobId(j.id))).size < nD; i++) {
          const res = await call('POST', '/v1/deals/insights?waitMs=20000', { dealIds: ['D-1', `D-${i + 2}`] });
          expect(res.status).toBe(200);
          deals.push(...res.body.jobs.map((j) => ({ id: j.id, state: j.state, found: (j.result.deals as { found: boolean }[]).map((d) => d.found) })));
        }
        expect(embedded.every((j) => j.state === 'completed' && j.dims === 768)).toBe(true);
        expect(deals.every((j) => j.state === 'completed' && String(j.found) === 'true,true')).toBe(true);
        expect([...new Set(embedded.map((j) => shardOfJobId(j.id)))].sort()).toEqual(range(nE));
        expect([...new Set(deals.map((j) => shardOfJobId(j.id)))].sort()).toEqual(range(nD));
        // GET /v1/jobs/:queue/:id finds a job on the last shard from its id alone.
        for (const [queue, jobs] of [
          [QUEUES.embeddings, embedded],
          [QUEUES.deals, deals],
        ] as const) {
          const last = jobs.find((j) => shardOfJobId(j.id) === Math.max(...jobs.map((x) => shardOfJobId(x.id))))!;
          const res = await fetch(`${api}/v1/jobs/${queue}/${encodeURIComponent(last.id)}`, { headers: { authorization: `Bearer ${token}` } });
          expect({ queue, status: res.status, state: ((await res.json()) as { state: string }).state }).toEqual({ queue, status: 200, state: 'completed' });
        }
        await expectShardsOnMasters(
          prefix,
          QUEUES.embeddings,
          nE,
          embedded.map((j) => j.id),
        );
        await expectShardsOnMasters(
          prefix,
          QUEUES.deals,
          nD,
          deals.map((j) => j.id),
        );
      } finally {
        up.child.kill('SIGTERM');
      }
      expect(await up.exited).toBe(0);
      expect(up.output()).not.toMatch(/CROSSSLOT|"level":50/);
    }, 90_000);

    it('each worker role starts on the cluster (a worker per shard), runs its jobs on every shard, and exits 0 on SIGTERM', async () => {
      const prefix = await spreadPrefix('roles');
      const env = {
        REDIS_CLUSTER_NODES: cluster.seeds,
        REDIS_URL: '',
        FLEET_QUEUE_PREFIX: prefix,
        FLEET_QUEUE_SHARDS: shards,
        SNOWFLAKE_ACCESS_URL: warehouse.url,
        POOL_MIN: '0',
        POOL_MAX: '2',
        INDEX_SNAPSHOT_DIR: path.join(dir, `roles-index-${shards ? 'sharded' : 'one'}`),
      };
      // The library producer, configured from the same variables as the roles.
      const cfg = loadConfig(env);
      const connection = createRedis(cfg.redis);
      const producer = createProducer({ connection, prefix: cfg.queuePrefix, shards: cfg.shards.counts });
      const roles = ['embeddings', 'deals', 'flows', 'index', 'search'] as const;
      const started = roles.map((role) => ({
        role,
        p: startReplica(env, role),
        ready: role === 'index' ? 'index builder started' : 'worker started',
      }));
      try {
        await Promise.all(started.map((s) => s.p.logged(s.ready, 60_000)));
        const nE = shardCount(cfg.shards.counts, QUEUES.embeddings);
        const nD = shardCount(cfg.shards.counts, QUEUES.deals);
        // Without an idempotency key the producer deals jobs to the shards in turn: 2 per shard, 1 per shard.
        const texts = range(2 * nE).map((i) => `roles on the cluster ${i}: renewal risk`);
        const embedded = await producer.embed(texts);
        const dealJobs: JobHandle<DealInsightsResult>[] = [];
        for (let i = 0; i < nD; i++) dealJobs.push(await producer.dealInsights(['D-1', `D-${i + 2}`]));
        expect((await Promise.all(embedded.map((h) => h.result({ timeoutMs: 30_000 })))).map((r) => r.dims)).toEqual(texts.map(() => 768));
        expect((await Promise.all(dealJobs.map((h) => h.result({ timeoutMs: 30_000 })))).map((r) => r.deals.map((d) => d.found))).toEqual(
          dealJobs.map(() => [true, true]),
        );
        expect(embedded.map((h) => shardOfJobId(h.id)).sort()).toEqual(range(nE).flatMap((k) => [k, k]));
        expect(dealJobs.map((h) => shardOfJobId(h.id)).sort()).toEqual(range(nD));
        await expectShardsOnMasters(
          prefix,
          QUEUES.embeddings,
          nE,
          embedded.map((h) => h.id),
        );
        await expectShardsOnMasters(
          prefix,
          QUEUES.deals,
          nD,
          dealJobs.map((h) => h.id),
        );
        // One BullMQ worker per shard: the embeddings role says so nE times, the deals role nD times.
        const workersOf = (role: string) =>
          started
            .find((s) => s.role === role)!
            .p.output()
            .split('\n')
            .filter((l) => l.includes('"msg":"worker started"') && l.includes(`"queue":"${role}"`)).length;
        expect({ embeddings: workersOf('embeddings'), deals: workersOf('deals') }).toEqual({ embeddings: nE, deals: nD });

        const stops = await Promise.all(
          started.map(async (s) => {
            const t0 = Date.now();
            return { role: s.role, code: await s.p.stop(20_000), ms: Date.now() - t0 };
          }),
        );
        process.stdout.write(`roles on the cluster (${shards || 'one shard each'}), SIGTERM to exit: ${stops.map((s) => `${s.role} ${s.ms} ms`).join(', ')}\n`);
        expect(stops.map((s) => [s.role, s.code])).toEqual(roles.map((r) => [r, 0]));
        for (const s of started) expect({ role: s.role, errors: s.p.output().match(/CROSSSLOT|"level":50.*/g) }).toEqual({ role: s.role, errors: null });
      } finally {
        for (const s of started) await s.p.kill('SIGKILL');
        await producer.close();
        await closeRedis(connection);
      }
    }, 120_000);
  });

  /**
   * An embeddings job with an index target on a shard after the first: the embeddings role appends every upsert to
   * the fleet prefix's one index log (`{T}:index:log`), and a job whose hash is in another slot marks its upsert
   * with a key of its own in the log's slot (src/index-builder/upsert-stream.ts, appendUpsertsOnce), so one script
   * stays in one slot (it was CROSSSLOT before) and each job's upsert is in the log once.
   */
  it('sharded embeddings with index targets write each upsert once, on every shard', async () => {
    const prefix = await spreadPrefix('indexed');
    const cfg = loadConfig({
      REDIS_CLUSTER_NODES: cluster.seeds,
      FLEET_QUEUE_PREFIX: prefix,
      FLEET_QUEUE_SHARDS: SHARDS,
      SNOWFLAKE_ACCESS_URL: warehouse.url,
      POOL_MIN: '0',
      POOL_MAX: '2',
      INDEX_SNAPSHOT_DIR: path.join(dir, 'indexed-index'),
      LOG_LEVEL: 'error',
    });
    let fleet: RunningFleet | undefined;
    const connection = createRedis(cfg.redis);
    // One attempt: a job that fails, fails at once.
    const producer = createProducer({ connection, prefix, shards: cfg.shards.counts, defaultJobOptions: { attempts: 1 } });
    try {
      fleet = await startFleet(cfg, {
        roles: ['embeddings'],
        embeddedRedis: false,
        embeddedWarehouse: false,
        logger: createLogger({ level: 'fatal', secrets: cfg.secrets }),
      });
      const texts = range(6).map((i) => `indexed on shard ${i % 3}: renewal risk`);
      const handles = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'sharded', id: `doc-${i}` })) });
      expect(new Set(handles.map((h) => shardOfJobId(h.id))).size).toBe(3);
      await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
      const logs = [
        prefix,
        ...range(3)
          .map((k) => shardPrefix(prefix, QUEUES.embeddings, k))
          .slice(1),
      ];
      const perJob = new Map<string, number>();
      for (const effects of await Promise.all(logs.map((p) => countIndexEffects(connection, p)))) {
        for (const [id, n] of effects.perJob) perJob.set(id, (perJob.get(id) ?? 0) + n);
      }
      expect(handles.map((h) => perJob.get(h.id) ?? 0)).toEqual(handles.map(() => 1));
    } finally {
      await producer.close();
      await closeRedis(connection);
      await fleet?.close();
    }
  }, 60_000);

  it('failover: 5,000 embedding jobs over 3 shards, SIGKILL the master of shard 1 (not {fleet}) mid-run; its replica takes over, every accepted job completes once', async () => {
    // The production prefix: shard 0 is `{fleet}` (with the index log, flows and the cache on its master), shards 1
    // and 2 are tags of their own on the two other masters. The master killed is shard 1's, which holds no `{fleet}`
    // key: the fault is one shard's Redis (the `{fleet}` master's failover was this test before sharding, same
    // figures in docs/reliability.md), and the other shards must keep completing jobs through it.
    const prefix = '{fleet}';
    const shards = SHARD_COUNTS.embeddings!;
    const placed = shardMasters(await cluster.slotRanges(), prefix, QUEUES.embeddings, shards);
    const target = placed.find((p) => p.shard > 0 && p.master !== placed[0].master);
    if (!target) throw new Error(`every embeddings shard is on the {fleet} master: ${JSON.stringify(placed)}`);
    const master = await cluster.masterOf(target.prefix);
    const replica = (await cluster.topology()).find((n) => n.masterId === master.id);
    expect(replica).toBeDefined();
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_URL: '',
      FLEET_QUEUE_SHARDS: SHARDS,
      ...faultReplicaEnv(prefix, warehouse.url, { WORKER_MAX_STALLED_COUNT: '20', WORKER_LOCK_DURATION_MS: String(LOCK_MS), LOG_LEVEL: 'info' }),
    };
    const cfg = loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds, FLEET_QUEUE_SHARDS: SHARDS });
    const connection: RedisClient = createRedis(cfg.redis);
    const producerErrors: string[] = [];
    const producer = createProducer({ connection, prefix, shards: cfg.shards.counts, onError: (err) => producerErrors.push(err.message) });
    const queues = producer.shardQueues(QUEUES.embeddings);
    expect(queues.map((q) => q.opts.prefix)).toEqual(placed.map((p) => p.prefix));
    const victim = queues[target.shard];
    const others = queues.filter((_, k) => k !== target.shard);
    const completedOn = async (qs: readonly Queue[]) =>
      (await Promise.all(qs.map((q) => q.getJobCounts('completed')))).reduce((sum, c) => sum + c.completed, 0);
    const worker = startReplica(env);
    const handles: JobHandle<EmbeddingResult>[] = [];
    let refused = 0;
    let buffered = 0;
    let n = 0;
    // With index targets: "once" is counted on completions and on index upserts per job id.
    const enqueue = async (count: number) => {
      const first = n;
      const texts = Array.from({ length: count }, () => `cluster failover note ${n++}: renewal risk for account ${n % 97}`);
      try {
        const hs = await producer.embed(texts, { index: texts.map((_, i) => ({ namespace: 'failover', id: `doc-${first + i}` })) });
        buffered += hs.filter((h) => h.buffered).length;
        handles.push(...hs);
      } catch (err) {
        refused += count;
        refusals.push((err as Error).message);
      }
    };
    const refusals: string[] = [];
    try {
      await worker.logged('worker started', 60_000);
      await enqueue(4_000);
      await waitUntil(
        `the worker to be mid-run, shard ${target.shard} too`,
        async () => {
          const c = await Promise.all(queues.map((q) => q.getJobCounts('completed', 'active')));
          return c.reduce((sum, x) => sum + x.completed, 0) >= 600 && c[target.shard].active > 0;
        },
        { timeoutMs: 60_000, everyMs: 20 },
      );
      const atKill = await Promise.all(queues.map((q) => q.getJobCounts('completed', 'active')));
      const othersAtKill = await completedOn(others);
      const killedAt = Date.now();
      await cluster.nodes.find((x) => x.port === master.port)!.server.kill('SIGKILL');
      // The producer keeps enqueueing through the failover: 10 calls of 100 texts over the 3 shards, one every 300 ms.
      const during = (async () => {
        for (let i = 0; i < 10; i++) {
          await Promise.all([enqueue(100), new Promise((r) => setTimeout(r, 300))]);
        }
        return Date.now() - killedAt;
      })();
      const promoted = await waitUntil(
        `the replica to take over shard ${target.shard}'s slot`,
        async () => {
          const nodes = await cluster.topology(replica!.port).catch(() => []);
          return nodes.some((x) => x.port === replica!.port && x.role === 'master') && Date.now();
        },
        { timeoutMs: 30_000 + 3 * NODE_TIMEOUT_MS, everyMs: 50 },
      );
      const failoverMs = promoted - killedAt;
      // The other shards' masters were never away: their jobs kept completing while this one was dead.
      const othersWhileDown = (await completedOn(others)) - othersAtKill;
      const victimAtPromotion = await completedOn([victim]);
      const servingAgain = await waitUntil(
        'the killed shard to complete jobs again',
        async () => (await completedOn([victim])) > victimAtPromotion && Date.now(),
        {
          timeoutMs: 30_000,
          everyMs: 20,
        },
      );
      const enqueuedBy = await during;
      expect((await cluster.masterOf(target.prefix)).port).toBe(replica!.port);
      expect((await cluster.masterOf(prefix)).port).toBe(placed[0].master);

      const accepted = handles.length;
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
      const drainedMs = Date.now() - killedAt;
      const idsOf = (k: number) => handles.filter((h) => shardOfJobId(h.id) === k).map((h) => h.id);
      const acceptedPerShard = range(shards).map((k) => idsOf(k).length);
      const perShard = await Promise.all(queues.map((q) => q.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized')));
      const counts = Object.fromEntries(Object.keys(perShard[0]).map((state) => [state, perShard.reduce((sum, c) => sum + c[state], 0)]));
      // Completions per job: `completed` events in each shard's event stream (a job finished twice shows 2).
      const completions = await Promise.all(queues.map((q) => countCompletedEvents(connection as never, q.opts.prefix!, QUEUES.embeddings)));
      // Runs per job that got as far as logging which batch served it (a job re-run after its lock expired logs again).
      const runs = await Promise.all(queues.map((q, k) => countLogRows(connection as never, q.opts.prefix!, QUEUES.embeddings, idsOf(k), /^served /)));
      // Jobs BullMQ started more than once (stalled: their lock expired; or retried after a failed attempt).
      const reRun = await Promise.all(
        queues.map(async (q) => (await q.getJobs(['completed'], 0, accepted)).filter((j) => j.stalledCounter > 0 || j.attemptsStarted > 1).length),
      );
      const redisLines = worker
        .output()
        .split('\n')
        .filter((l) => l.includes('"dependency":"redis"'))
        .map((l) => (JSON.parse(l) as { msg: string }).msg.split(';')[0]);
      const doubled = completions.reduce((sum, c) => sum + moreThanOnce(c), 0);
      // Index upserts per job: every shard's jobs append to the one `{fleet}` index log, each once.
      const effects = await countIndexEffects(connection as never, prefix);
      const doubledEffects = moreThanOnce(effects.perJob);
      reportFault({
        fault: `Redis Cluster, embeddings in ${shards} shards: SIGKILL the master of shard ${target.shard} (not {fleet}'s) under load (cluster-node-timeout ${NODE_TIMEOUT_MS / 1000} s, lock ${LOCK_MS / 1000} s)`,
        accepted,
        completed: counts.completed,
        failed: counts.failed,
        duplicatedEffects: Math.max(doubled, doubledEffects),
        detail:
          `duplicated = jobs completed more than once (${doubled}) or whose index upsert was appended more than once (${doubledEffects}); replica promoted ${failoverMs} ms after the kill, the shard completing jobs again ${servingAgain - killedAt} ms after it; ` +
          `accepted per shard ${acceptedPerShard.join('/')}; at the kill, completed ${atKill.map((c) => c.completed).join('/')} and active ${atKill.map((c) => c.active).join('/')}; ` +
          `the other shards completed ${othersWhileDown} jobs while it was down; ${refused} enqueues refused${refusals.length ? ` (${[...new Set(refusals)].join('; ')})` : ''}, ${buffered} buffered; ` +
          `1,000 enqueued during the failover in ${enqueuedBy} ms; all done ${drainedMs} ms after the kill; ` +
          `jobs started again per shard ${reRun.join('/')}, logged "served by" more than once ${runs.map(moreThanOnce).join('/')}; ${producerErrors.length} producer notices; ` +
          `worker's Redis log: ${redisLines.length ? redisLines.join(' / ') : 'nothing'}`,
      });

      expect(refused).toBe(0);
      expect(accepted).toBe(5_000);
      expect(acceptedPerShard.every((a) => a > 1_500)).toBe(true);
      expect(results.every((r) => r.dims === 768)).toBe(true);
      expect(counts).toEqual({ completed: accepted, failed: 0, active: 0, waiting: 0, delayed: 0, prioritized: 0 });
      expect(perShard.map((c) => c.completed)).toEqual(acceptedPerShard);
      expect(completions.map((c, k) => ({ shard: k, jobs: c.size, doubled: moreThanOnce(c) }))).toEqual(
        acceptedPerShard.map((a, k) => ({ shard: k, jobs: a, doubled: 0 })),
      );
      expect({ jobs: effects.perJob.size, doubled: doubledEffects, missing: handles.filter((h) => !effects.perJob.has(h.id)).length }).toEqual({
        jobs: accepted,
        doubled: 0,
        missing: 0,
      });
    } finally {
      await worker.stop();
      await producer.close();
      await closeRedis(connection);
    }
  }, 240_000);
});
