import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import type { RunningFleet } from '../src/app/fleet';
import { consumedShards } from '../src/app/roles/context';
import { loadConfig } from '../src/config';
import type { EmbeddingResult } from '../src/contracts/embedding';
import { QUEUES, type QueueName } from '../src/contracts/queues';
import {
  clusterSlot,
  MAX_SHARDS,
  parseShardCounts,
  parseShardSelection,
  pickShard,
  SHARDABLE_QUEUES,
  shardCount,
  shardOfJobId,
  shardOfPrefix,
  shardPrefix,
  withShardMark,
} from '../src/contracts/shards';
import { createProducer, idempotentJobId, type JobHandle, type Producer } from '../src/producers';
import { startProductionApi } from './helpers/api';
import { testRedis, testRedisUrl } from './helpers/redis';
import { completionsByJob, jobIdsByShard, lateRedis, removeShardedKeys, shardedPrefix, startShardedFleet, unmarked, watchScriptSlots } from './helpers/shards';
import { waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * Sharded queues (issue #21): FLEET_QUEUE_SHARDS splits a queue into BullMQ queues under prefixes with hash tags
 * of their own. Producers route and mark jobs, the roles' workers consume every shard with one coalescer, a layout
 * change drains the old shards while the new ones fill, and the HTTP API, Bull Board and /metrics see every shard.
 * Real Redis, real BullMQ, the fleet's own roles in-process on the local warehouse.
 */
const E = QUEUES.embeddings;
const TOKEN = 'shards-api-token-0123456789abcdef';

describe('shard layout: pure functions', () => {
  it('parses FLEET_QUEUE_SHARDS and FLEET_WORKER_SHARDS, naming what is wrong', () => {
    // Jobs that stand alone; a flow's parent and children share one hash tag.
    expect(SHARDABLE_QUEUES).toEqual(['embeddings', 'deals', 'search']);
    expect(parseShardCounts('embeddings=3,deals=2')).toEqual({ embeddings: 3, deals: 2 });
    expect(parseShardCounts(' search=16 , ')).toEqual({ search: 16 });
    expect(parseShardCounts('')).toEqual({});
    expect(() => parseShardCounts('nope=2')).toThrow(/FLEET_QUEUE_SHARDS: "nope" cannot be sharded \(shardable: embeddings, deals, search/);
    for (const flow of ['workflows=2', 'collect=2', 'analyze=2']) expect(() => parseShardCounts(flow)).toThrow(/cannot be sharded.*flows keep one hash tag/);
    expect(() => parseShardCounts('embeddings=0')).toThrow(`FLEET_QUEUE_SHARDS: embeddings must have 1 to ${MAX_SHARDS} shards, got 0`);
    expect(() => parseShardCounts('embeddings=17')).toThrow(/must have 1 to 16 shards, got 17/);
    expect(() => parseShardCounts('embeddings=1000')).toThrow(/"embeddings=1000" is not queue=count/);
    expect(() => parseShardCounts('embeddings=-1')).toThrow(/is not queue=count/);
    expect(() => parseShardCounts('embeddings')).toThrow(/"embeddings" is not queue=count/);
    expect(() => parseShardCounts('embeddings=2,embeddings=3')).toThrow(/embeddings is named twice/);
    expect(() => parseShardCounts('deals=2', 'FLEET_QUEUE_SHARDS_PREVIOUS')).not.toThrow();
    expect(() => parseShardCounts('deals=x', 'FLEET_QUEUE_SHARDS_PREVIOUS')).toThrow(/^FLEET_QUEUE_SHARDS_PREVIOUS: /);
    expect(shardCount({ embeddings: 3 }, E)).toBe(3);
    expect(shardCount({ embeddings: 3 }, QUEUES.deals)).toBe(1);
    expect(shardCount(undefined, E)).toBe(1);

    expect(parseShardSelection('embeddings=2+0+2,deals=1')).toEqual({ embeddings: [0, 2], deals: [1] });
    expect(() => parseShardSelection('embeddings=16')).toThrow(/shard indexes of embeddings must be below 16/);
    expect(() => parseShardSelection('workflows=0')).toThrow(/FLEET_WORKER_SHARDS: "workflows" cannot be sharded/);
    expect(() => parseShardSelection('embeddings=0,embeddings=1')).toThrow(/named twice/);
    expect(() => parseShardSelection('embeddings=0+')).toThrow(/is not queue=shard\+shard/);
  });

  it("clusterSlot is Redis Cluster's CRC16 slot, hash tags included", () => {
    // Values from Redis itself (CLUSTER KEYSLOT) and its cluster specification.
    expect(clusterSlot('foo')).toBe(12182);
    expect(clusterSlot('bar')).toBe(5061);
    expect(clusterSlot('{user1000}.following')).toBe(3443);
    expect(clusterSlot('{user1000}.followers')).toBe(3443);
    expect(clusterSlot('123456789')).toBe(0x31c3); // the CRC16/XMODEM check value
    // Only the first {…} counts; an empty one means the whole key is hashed.
    expect(clusterSlot('foo{bar}{zap}')).toBe(clusterSlot('bar'));
    expect(clusterSlot('foo{}{bar}')).not.toBe(clusterSlot('bar'));
    expect(clusterSlot('foo{{bar}}zap')).toBe(clusterSlot('{bar'));
    expect(clusterSlot('{fleet}:embeddings:wait')).toBe(clusterSlot('fleet'));
  });

  it('shardPrefix: shard 0 is the base, shard k a stable tag of its own; shardOfPrefix is its inverse', () => {
    expect(shardPrefix('{fleet}', E, 0)).toBe('{fleet}');
    expect(shardPrefix('fleet', E, 0)).toBe('fleet'); // one shard keeps any prefix
    // Pinned: these prefixes are where live jobs are; a change would strand them.
    expect(shardPrefix('{fleet}', E, 1)).toBe(PINNED.e1);
    expect(shardPrefix('{fleet}', E, 2)).toBe(PINNED.e2);
    expect(shardPrefix('{fleet}', QUEUES.deals, 1)).toBe(PINNED.d1);
    for (const base of ['{fleet}', '{t-shards-1234abcd}', 'app:{eu}:v2']) {
      const tag = /\{([^{}]+)\}/.exec(base)![1];
      for (const queue of [E, QUEUES.deals, QUEUES.search]) {
        const slots = new Set<number>();
        for (let k = 0; k < MAX_SHARDS; k++) {
          const p = shardPrefix(base, queue, k);
          expect(shardPrefix(base, queue, k)).toBe(p);
          expect(shardOfPrefix(p, queue)).toBe(k);
          if (k > 0) {
            expect(p).toBe(base.replace(`{${tag}}`, p.slice(p.indexOf('{'), p.indexOf('}') + 1)));
            expect(p).toMatch(new RegExp(`\\{${tag}:${queue}:${k}(:\\d+)?\\}`));
          }
          slots.add(clusterSlot(`${p}:${queue}:wait`));
        }
        // 16 shards, 16 slots: each shard's keys in a slot of their own.
        expect(slots.size).toBe(MAX_SHARDS);
        // Another queue's shard prefix is not this queue's shard.
        expect(shardOfPrefix(shardPrefix(base, queue, 2), queue === E ? QUEUES.deals : E)).toBe(0);
      }
    }
    // Three shards of {fleet} on three masters that split the slots evenly (redis-cli --cluster create).
    const master = (slot: number) => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
    expect(new Set([0, 1, 2].map((k) => master(clusterSlot(shardPrefix('{fleet}', E, k))))).size).toBe(3);
    expect(() => shardPrefix('fleet', E, 1)).toThrow(/needs a prefix with a hash tag/);
    for (const bad of [-1, 1.5, MAX_SHARDS]) expect(() => shardPrefix('{fleet}', E, bad)).toThrow(/shard must be an integer from 0 to 15/);
    expect(shardOfPrefix('{fleet}', E)).toBe(0);
  });

  it('job ids name their shard; pickShard keeps a key on one shard and spreads the rest', () => {
    expect(withShardMark('j-1', 0)).toBe('j-1');
    expect(withShardMark('idem-abc', 2)).toBe('s2.idem-abc');
    expect(withShardMark('j-1', 15)).toBe('s15.j-1');
    for (let k = 0; k < MAX_SHARDS; k++) expect(shardOfJobId(withShardMark('idem-x', k))).toBe(k);
    expect(shardOfJobId('j-0b9e')).toBe(0);
    expect(shardOfJobId('sx.j-1')).toBe(0);
    expect(shardOfJobId('s.j-1')).toBe(0);
    expect(unmarked('s12.idem-abc')).toBe('idem-abc');

    expect(pickShard(1, 'k')).toBe(0);
    expect(pickShard(1)).toBe(0);
    for (let i = 0; i < 50; i++) expect(pickShard(3, `key-${i}`)).toBe(pickShard(3, `key-${i}`));
    const byKey = [0, 0, 0];
    for (let i = 0; i < 3000; i++) byKey[pickShard(3, `key-${i}`)]++;
    for (const n of byKey) expect(n).toBeGreaterThan(800);
    const turns = Array.from({ length: 6 }, () => pickShard(3));
    expect(new Set(turns).size).toBe(3);
  });
});

describe('config: FLEET_QUEUE_SHARDS, FLEET_QUEUE_SHARDS_PREVIOUS, FLEET_WORKER_SHARDS', () => {
  const env = (vars: Record<string, string>) => ({ REDIS_URL: 'redis://127.0.0.1:6379', ...vars });

  it('refuses a sharded layout on a prefix without a hash tag, and pins to shards that do not exist', () => {
    expect(() => loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_QUEUE_PREFIX: 'fleet' }))).toThrow(
      /FLEET_QUEUE_PREFIX="fleet" has no hash tag: sharded queues \(embeddings\) need one/,
    );
    // The previous layout's shards are keys too.
    expect(() => loadConfig(env({ FLEET_QUEUE_SHARDS_PREVIOUS: 'deals=2', FLEET_QUEUE_PREFIX: 'fleet' }))).toThrow(/has no hash tag: sharded queues \(deals\)/);
    // One shard each needs no tag (today's layout).
    expect(loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=1', FLEET_QUEUE_PREFIX: 'fleet' })).shards.counts).toEqual({ embeddings: 1 });
    expect(() => loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_WORKER_SHARDS: 'embeddings=0+3' }))).toThrow(
      /FLEET_WORKER_SHARDS pins embeddings to shard 3, but embeddings has 3 shard\(s\) \(0-2\)/,
    );
    expect(() => loadConfig(env({ FLEET_WORKER_SHARDS: 'deals=1' }))).toThrow(/pins deals to shard 1, but deals has 1 shard\(s\)/);
    expect(() => loadConfig(env({ FLEET_QUEUE_SHARDS: 'workflows=2' }))).toThrow(/FLEET_QUEUE_SHARDS=.*"workflows" cannot be sharded/);
    expect(() => loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=20' }))).toThrow(/must have 1 to 16 shards/);
  });

  it('consumedShards: every shard of both layouts, narrowed by the pins', () => {
    const config = loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=3,deals=2', FLEET_WORKER_SHARDS: 'embeddings=2+0' }));
    expect(config.shards).toEqual({ counts: { embeddings: 3, deals: 2 }, previous: undefined, consume: { embeddings: [0, 2] } });
    expect(consumedShards(config, E)).toEqual([0, 2]);
    expect(consumedShards(config, QUEUES.deals)).toEqual([0, 1]);
    expect(consumedShards(config, QUEUES.search)).toEqual([0]);
    expect(consumedShards(config, QUEUES.workflows)).toEqual([0]);
    // During a change, a pin may name a shard only the previous layout has (3 → 5 or 5 → 3).
    const changing = loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_QUEUE_SHARDS_PREVIOUS: 'embeddings=5', FLEET_WORKER_SHARDS: 'embeddings=4' }));
    expect(consumedShards(changing, E)).toEqual([4]);
    expect(consumedShards(loadConfig(env({ FLEET_QUEUE_SHARDS: 'embeddings=1', FLEET_QUEUE_SHARDS_PREVIOUS: 'embeddings=3' })), E)).toEqual([0, 1, 2]);
    expect(consumedShards(loadConfig(env({})), E)).toEqual([0]);
  });

  it('a producer refuses shards on a prefix without a hash tag', () => {
    expect(() => createProducer({ connection: testRedisUrl(), prefix: 'fleet', shards: { embeddings: 2 } })).toThrow(/needs a prefix with a hash tag/);
  });
});

describe("sharded queues on Redis, with the fleet's roles in-process", () => {
  let warehouse: LocalWarehouse;
  let redis: Redis;
  let fleet: RunningFleet | undefined;
  const producers: Producer[] = [];
  const prefixes: string[] = [];
  const newPrefix = (name: string) => {
    const p = shardedPrefix(name);
    prefixes.push(p);
    return p;
  };
  const cleanups: (() => Promise<unknown>)[] = [];
  const producer = (opts: Partial<Parameters<typeof createProducer>[0]>) => {
    const p = createProducer({ connection: redis, ...opts });
    producers.push(p);
    return p;
  };
  const startFleet = async (prefix: string, env: Record<string, string>, api = false, roles: readonly ('embeddings' | 'deals')[] = ['embeddings']) => {
    fleet = await startShardedFleet({ prefix, warehouseUrl: warehouse.url, env, api, roles });
    return fleet;
  };
  const stopFleet = async () => {
    await fleet?.close();
    fleet = undefined;
  };
  /** One BullMQ worker on each of `queues` (startWorkers: one per shard), once they have connected. */
  const workersOn = (queues: readonly Queue[]) =>
    waitUntil('a worker on each shard', async () => (await Promise.all(queues.map((q) => q.getWorkersCount()))).every((n) => n === 1), { timeoutMs: 10_000 });
  const results = (handles: readonly JobHandle<EmbeddingResult>[]) => Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
  const byShard = (ids: readonly string[], shards: number) => Array.from({ length: shards }, (_, k) => ids.filter((id) => shardOfJobId(id) === k));
  /** Every job of every shard ran exactly once, and no key has a job in two shards: `ids` and nothing else. */
  const expectExactlyOnce = async (prefix: string, ids: readonly string[], shards: number, queue: QueueName = E) => {
    const expected = [...new Set(ids)].sort();
    const completions = await completionsByJob(redis, prefix, queue, shards);
    expect([...completions.keys()].sort()).toEqual(expected);
    expect([...completions].filter(([, n]) => n !== 1)).toEqual([]);
    const held = (await jobIdsByShard(redis, prefix, queue, shards)).flat();
    expect(held.sort()).toEqual(expected);
    expect(new Set(held.map(unmarked)).size).toBe(held.length);
  };

  beforeAll(async () => {
    warehouse = await startTestWarehouse({ deals: 50 });
    redis = testRedis();
  });

  afterEach(async () => {
    await stopFleet();
    await Promise.all(producers.splice(0).map((p) => p.close().catch(() => undefined)));
    for (const c of cleanups.splice(0)) await c();
  }, 30_000);

  afterAll(async () => {
    for (const p of prefixes) await removeShardedKeys(redis, p);
    await redis.quit();
    await warehouse.close();
  });

  it('3 shards (and deals in 2): jobs spread and marked, one job per key, result() from every shard, each job completed once', async () => {
    const prefix = newPrefix('shards-3');
    await startFleet(prefix, { FLEET_QUEUE_SHARDS: 'embeddings=3,deals=2', EMBED_BATCH_MAX_WAIT_MS: '150' }, false, ['embeddings', 'deals']);
    const p = producer({ prefix, shards: { embeddings: 3, deals: 2 } });
    const queues = p.shardQueues(E);
    expect(queues.map((q) => q.opts.prefix)).toEqual([0, 1, 2].map((k) => shardPrefix(prefix, E, k)));
    // startWorkers: one BullMQ worker on each shard.
    await workersOn(queues);

    // Every script call stays within one slot (what a Redis Cluster requires of each shard's work).
    const slots = await watchScriptSlots();
    // 300 enqueues: two in three with an idempotency key (its hash picks the shard), the rest in turn; some of
    // a tenant (its lanes are per shard).
    const text = (i: number) => `sharded note ${i}: the customer asked about pricing and the renewal`;
    const handles = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        p.embed(text(i), { ...(i % 3 ? { idempotencyKey: `note-${i}` } : {}), ...(i % 4 === 1 ? { tenant: 'acme' } : {}) }),
      ),
    );
    const ids = handles.map((h) => h.id);
    expect(new Set(ids).size).toBe(300);
    handles.forEach((h, i) => {
      if (i % 3) expect(h.id).toBe(withShardMark(idempotentJobId(E, `note-${i}`), pickShard(3, `note-${i}`)));
      else expect(h.id).toMatch(/^(s[12]\.)?j-[0-9a-f-]{36}$/);
    });
    const perShard = byShard(ids, 3);
    for (const list of perShard) expect(list.length).toBeGreaterThan(60);
    // Each job is in the BullMQ queue of the shard its id names, and nowhere else.
    const held = await jobIdsByShard(redis, prefix, E, 3);
    expect(held).toEqual(perShard.map((l) => [...l].sort()));
    expect(held[1].every((id) => id.startsWith('s1.')) && held[2].every((id) => id.startsWith('s2.'))).toBe(true);

    // The same key again, and twice at once: one job.
    const again = await p.embed(text(1), { idempotencyKey: 'note-1' });
    expect(again.id).toBe(handles[1].id);
    const [d1, d2] = await Promise.all([p.embed('twice', { idempotencyKey: 'twice' }), p.embed('twice', { idempotencyKey: 'twice' })]);
    expect(d1.id).toBe(d2.id);
    expect(p.queueOfJob(E, d1.id).opts.prefix).toBe(shardPrefix(prefix, E, pickShard(3, 'twice')));

    // result() of jobs on every shard, from the one coalescer: batches mix the shards' jobs.
    const done = await results([...handles, again, d1, d2]);
    for (const r of done) expect(r).toMatchObject({ dims: 768, cached: false, batch: { batchId: expect.any(String) } });
    const shardsOfBatch = new Map<string, Set<number>>();
    handles.forEach((h, i) => {
      const b = done[i].batch!.batchId;
      shardsOfBatch.set(b, (shardsOfBatch.get(b) ?? new Set()).add(shardOfJobId(h.id)));
    });
    // (Each shard's worker with a coalescer of its own could never mix them.)
    expect([...shardsOfBatch.values()].some((s) => s.size > 1)).toBe(true);
    // waitForResults looks each job up in its shard.
    const shard2 = handles.filter((h) => shardOfJobId(h.id) === 2).slice(0, 20);
    expect((await p.waitForResults(shard2, { timeoutMs: 2_000 })).map((o) => o.state)).toEqual(shard2.map(() => 'completed'));
    await expectExactlyOnce(prefix, [...ids, d1.id], 3);

    // The deals role on its 2 shards, the same way.
    await workersOn(p.shardQueues(QUEUES.deals));
    const deals = await Promise.all(Array.from({ length: 20 }, (_, i) => p.dealInsights([`D-${i + 1}`, `D-${i + 2}`], { idempotencyKey: `deals-${i}` })));
    const dealIds = deals.map((h) => h.id);
    expect(byShard(dealIds, 2).every((l) => l.length > 0)).toBe(true);
    for (const r of await Promise.all(deals.map((h) => h.result({ timeoutMs: 30_000 })))) expect(r).toMatchObject({ requested: 2, found: 2 });
    await expectExactlyOnce(prefix, dealIds, 2, QUEUES.deals);
    expect(slots.calls()).toBeGreaterThan(300);
    expect(await slots.stop()).toEqual([]);
  }, 60_000);

  it('1 → 3 shards: a retried key finds its old job, the union drains the old layout while the new one fills', async () => {
    const prefix = newPrefix('shards-1to3');
    // Before the change: one shard, and no worker yet, so the old layout holds a backlog.
    const old = producer({ prefix });
    const keys = Array.from({ length: 60 }, (_, i) => `move-${i}`);
    const text = (i: number) => `moved note ${i}: legal review is blocking the deal`;
    const oldKeyed = await Promise.all(keys.map((k, i) => old.embed(text(i), { idempotencyKey: k })));
    const listTexts = ['list one', 'list two', 'list three', 'list four', 'list five'];
    const oldList = await old.embed(listTexts, { idempotencyKey: 'move-list' });
    const oldPlain = await old.embed(Array.from({ length: 40 }, (_, i) => `plain old note ${i}`));
    const oldIds = [...oldKeyed, ...oldList, ...oldPlain].map((h) => h.id);
    expect(oldIds.every((id) => shardOfJobId(id) === 0)).toBe(true);

    // The new layout puts most keys elsewhere: without the lookup their retries would be second jobs.
    const next = producer({ prefix, shards: { embeddings: 3 }, previousShards: { embeddings: 1 } });
    expect(keys.filter((k) => pickShard(3, k) !== 0).length).toBeGreaterThan(25);
    const retried = await Promise.all(keys.map((k, i) => next.embed(text(i), { idempotencyKey: k })));
    expect(retried.map((h) => h.id)).toEqual(oldKeyed.map((h) => h.id));
    expect((await next.embed(listTexts, { idempotencyKey: 'move-list' })).map((h) => h.id)).toEqual(oldList.map((h) => h.id));
    // The same retry from a producer that cannot reach Redis yet: buffered under the id the new layout gives the key,
    // then, once Redis answers, found in the old layout; its result() follows the job it found.
    const movedKey = keys.findIndex((k) => pickShard(3, k) !== 0);
    const late = await lateRedis();
    cleanups.push(() => late.close());
    const offline = producer({
      connection: late.url,
      prefix,
      shards: { embeddings: 3 },
      previousShards: { embeddings: 1 },
      connectWaitMs: 100,
      onError: () => undefined,
    });
    const buffered = await offline.embed(text(movedKey), { idempotencyKey: keys[movedKey] });
    expect(buffered.buffered).toBe(true);
    await late.open();
    await buffered.persisted;
    const bufferedResult = buffered.result({ timeoutMs: 30_000 });

    // Workers of the union (FLEET_QUEUE_SHARDS=3, FLEET_QUEUE_SHARDS_PREVIOUS=1); the new layout fills meanwhile,
    // and a producer still on the old layout keeps adding to shard 0.
    await startFleet(prefix, { FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_QUEUE_SHARDS_PREVIOUS: 'embeddings=1' });
    const [fresh, lateOld, retriedAgain] = await Promise.all([
      Promise.all(Array.from({ length: 90 }, (_, i) => next.embed(`fresh note ${i}`, i % 2 ? { idempotencyKey: `fresh-${i}` } : {}))),
      old.embed(Array.from({ length: 20 }, (_, i) => `late old note ${i}`)),
      Promise.all(keys.slice(0, 30).map((k, i) => next.embed(text(i), { idempotencyKey: k }))),
    ]);
    expect(retriedAgain.map((h) => h.id)).toEqual(oldKeyed.slice(0, 30).map((h) => h.id));
    const freshIds = fresh.map((h) => h.id);
    expect(byShard(freshIds, 3).every((l) => l.length > 0)).toBe(true);
    // A new key retried now is the new layout's job.
    expect((await next.embed('fresh note 1', { idempotencyKey: 'fresh-1' })).id).toBe(fresh[1].id);

    // result() of an old job through the new producer, and of every job: nothing lost, nothing doubled.
    await results([...retried, ...oldList, ...oldPlain, ...fresh, ...lateOld]);
    expect(await bufferedResult).toEqual(await oldKeyed[movedKey].result());
    await expectExactlyOnce(prefix, [...oldIds, ...freshIds, ...lateOld.map((h) => h.id)], 3);
  }, 60_000);

  it('3 → 1 shard: the old shards drain through the union, retried keys find their marked jobs', async () => {
    const prefix = newPrefix('shards-3to1');
    const old = producer({ prefix, shards: { embeddings: 3 } });
    const keys = Array.from({ length: 60 }, (_, i) => `back-${i}`);
    const text = (i: number) => `note ${i} going back to one shard`;
    const oldKeyed = await Promise.all(keys.map((k, i) => old.embed(text(i), { idempotencyKey: k })));
    const oldPlain = await old.embed(Array.from({ length: 30 }, (_, i) => `plain three-shard note ${i}`));
    const oldIds = [...oldKeyed, ...oldPlain].map((h) => h.id);
    expect(byShard(oldIds, 3).every((l) => l.length > 10)).toBe(true);

    const next = producer({ prefix, shards: { embeddings: 1 }, previousShards: { embeddings: 3 } });
    // The old shards stay visible (lookups, result()) until the previous layout is forgotten.
    expect(next.shardQueues(E).map((q) => q.opts.prefix)).toEqual([0, 1, 2].map((k) => shardPrefix(prefix, E, k)));
    const retried = await Promise.all(keys.map((k, i) => next.embed(text(i), { idempotencyKey: k })));
    expect(retried.map((h) => h.id)).toEqual(oldKeyed.map((h) => h.id));
    expect(retried.some((h) => shardOfJobId(h.id) === 2)).toBe(true);

    await startFleet(prefix, { FLEET_QUEUE_SHARDS: 'embeddings=1', FLEET_QUEUE_SHARDS_PREVIOUS: 'embeddings=3' });
    await workersOn(next.shardQueues(E));
    const fresh = await Promise.all(Array.from({ length: 60 }, (_, i) => next.embed(`one-shard note ${i}`, i % 2 ? { idempotencyKey: `one-${i}` } : {})));
    expect(fresh.every((h) => shardOfJobId(h.id) === 0)).toBe(true);
    await results([...retried, ...oldPlain, ...fresh]);
    await expectExactlyOnce(prefix, [...oldIds, ...fresh.map((h) => h.id)], 3);
    // Drained: nothing left for the previous layout's shards, so FLEET_QUEUE_SHARDS_PREVIOUS can go.
    for (const q of next.shardQueues(E).slice(1)) {
      const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
      expect(c).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, failed: 0 });
    }
  }, 60_000);

  describe('the HTTP API as `fleet api` wires it, over 3 shards', () => {
    /** A key whose list jobs land on every shard (`key#i` picks the shard of job i). */
    const KEY = 'http-list';
    const TEXTS = Array.from({ length: 12 }, (_, i) => `http note ${i}: the champion left the company`);
    const expectedIds = TEXTS.map((_, i) => withShardMark(idempotentJobId(E, `${KEY}#${i}`), pickShard(3, `${KEY}#${i}`)));
    let api: string;
    const get = async (route: string) => {
      const res = await fetch(`${api}${route}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    /** Every page of a lookup, following nextCursor. */
    const allPages = async (route: string) => {
      const ids: string[] = [];
      let pages = 0;
      for (let cursor: string | null = ''; cursor !== null; pages++) {
        const res = await get(`${route}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        ids.push(...(res.body.jobs as { id: string }[]).map((j) => j.id));
        cursor = res.body.nextCursor as string | null;
      }
      return { ids, pages };
    };

    it('POST /v1/embeddings, then jobs by id, idempotency key, tenant and batch across shards; Bull Board and /metrics', async () => {
      expect(new Set(expectedIds.map(shardOfJobId))).toEqual(new Set([0, 1, 2]));
      const prefix = newPrefix('shards-http');
      // A long batch wait: the 12 jobs, fetched by three shards' workers, share one batch.
      const f = await startFleet(prefix, { FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_API_TOKENS: TOKEN, EMBED_BATCH_MAX_WAIT_MS: '300' }, true);
      api = f.apiUrl!;
      const slots = await watchScriptSlots();
      const posted = await fetch(`${api}/v1/embeddings?waitMs=20000`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'idempotency-key': KEY, 'x-fleet-tenant': 'acme' },
        body: JSON.stringify({ texts: TEXTS }),
      });
      expect(posted.status).toBe(200);
      const jobs = ((await posted.json()) as { jobs: { id: string; state: string; result: EmbeddingResult }[] }).jobs;
      expect(jobs.map((j) => [j.id, j.state])).toEqual(expectedIds.map((id) => [id, 'completed']));

      // By id, on shard 0 and shard 2; an id naming the wrong shard, or one the queue does not have, is no job.
      for (const k of [0, 2]) {
        const id = expectedIds.find((i) => shardOfJobId(i) === k)!;
        const res = await get(`/v1/jobs/embeddings/${encodeURIComponent(id)}`);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ queue: 'embeddings', id, state: 'completed', result: { dims: 768 } });
        expect((await get(`/v1/jobs?queue=embeddings&id=${encodeURIComponent(id)}`)).body.jobs).toMatchObject([{ id, state: 'completed' }]);
      }
      const onZero = expectedIds.find((i) => shardOfJobId(i) === 0)!;
      expect((await get(`/v1/jobs/embeddings/${encodeURIComponent(withShardMark(onZero, 2))}`)).status).toBe(404);
      expect((await get(`/v1/jobs/embeddings/${encodeURIComponent(withShardMark(onZero, 7))}`)).status).toBe(404);

      // By idempotency key: every job of the list in order, page by page over the shards.
      const byKey = await allPages(`/v1/jobs?queue=embeddings&idempotencyKey=${KEY}&limit=5`);
      expect(byKey.ids).toEqual(expectedIds);
      expect(byKey.pages).toBe(3);
      // By tenant: the cursor counts across the shards' indexes; every job once.
      const byTenant = await allPages('/v1/jobs?queue=embeddings&tenant=acme&limit=5');
      expect([...byTenant.ids].sort()).toEqual([...expectedIds].sort());
      expect(byTenant.pages).toBeGreaterThanOrEqual(3);
      expect((await get('/v1/jobs?queue=embeddings&tenant=globex')).body.jobs).toEqual([]);

      // A batch that served jobs of several shards: its record, and its jobs page by page.
      const jobsOf = (batchId: string) => jobs.filter((j) => j.result.batch?.batchId === batchId).map((j) => j.id);
      const shardsIn = (batchId: string) => new Set(jobsOf(batchId).map(shardOfJobId)).size;
      const batchId = jobs.map((j) => j.result.batch!.batchId).reduce((a, b) => (shardsIn(b) > shardsIn(a) ? b : a));
      const inBatch = jobsOf(batchId);
      expect(shardsIn(batchId)).toBeGreaterThan(1);
      const batch = await get(`/v1/batches/${encodeURIComponent(batchId)}?limit=100`);
      expect(batch.status).toBe(200);
      expect(batch.body).toMatchObject({ batchId, queues: ['embeddings'], outcome: 'ok', total: inBatch.length, nextCursor: null });
      expect((batch.body.jobs as { id: string }[]).map((j) => j.id).sort()).toEqual([...inBatch].sort());
      const batchIds: string[] = [];
      for (let cursor: string | null = '0'; cursor !== null; ) {
        const page = await get(`/v1/batches/${encodeURIComponent(batchId)}?limit=2&cursor=${cursor}`);
        batchIds.push(...(page.body.jobs as { id: string }[]).map((j) => j.id));
        cursor = page.body.nextCursor as string | null;
      }
      expect(batchIds.sort()).toEqual([...inBatch].sort());
      expect((await get(`/v1/jobs?queue=embeddings&batch=${encodeURIComponent(batchId)}&limit=100`)).body.jobs).toHaveLength(inBatch.length);

      // Bull Board (an API token is an admin there): each shard a queue of its own.
      const board = await get('/admin/queues/api/queues');
      expect(board.status).toBe(200);
      const boardQueues = board.body.queues as { name: string; displayName?: string; counts: Record<string, number> }[];
      const shardsOnBoard = boardQueues.filter((q) => /^(s\d+\.)?embeddings$/.test(q.name));
      expect(shardsOnBoard.map((q) => [q.name, q.displayName])).toEqual([
        ['embeddings', 'embeddings'],
        ['s1.embeddings', 'embeddings · shard 1'],
        ['s2.embeddings', 'embeddings · shard 2'],
      ]);
      expect(shardsOnBoard.map((q) => q.counts.completed)).toEqual([0, 1, 2].map((k) => expectedIds.filter((id) => shardOfJobId(id) === k).length));
      const onTwo = expectedIds.find((i) => shardOfJobId(i) === 2)!;
      const boardJob = await get(`/admin/queues/api/queues/s2.embeddings/${encodeURIComponent(onTwo)}`);
      expect(boardJob.status).toBe(200);
      expect(boardJob.body).toMatchObject({ job: { id: onTwo } });

      // /metrics: the queue's depth per shard.
      const metrics = await (await fetch(`${api}/metrics`)).text();
      const completed = new Map<string, number>();
      for (const line of metrics.split('\n')) {
        if (!line.startsWith('fleet_queue_jobs{')) continue;
        const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        if (labels.queue === 'embeddings' && labels.state === 'completed') completed.set(labels.shard, Number(line.split(' ').pop()));
        if (labels.queue === 'deals') expect(labels.shard).toBe('0');
      }
      expect(Object.fromEntries(completed)).toEqual(
        Object.fromEntries([0, 1, 2].map((k) => [String(k), expectedIds.filter((id) => shardOfJobId(id) === k).length])),
      );
      expect(await slots.stop()).toEqual([]);
    }, 60_000);

    it("the backlog bound is the queue's, summed over its shards", async () => {
      const prefix = newPrefix('shards-backlog');
      const running = await startProductionApi({ prefix, token: TOKEN, env: { FLEET_QUEUE_SHARDS: 'embeddings=3', FLEET_API_MAX_BACKLOG: '10' } });
      try {
        // Nine waiting jobs, three per shard (no worker runs): shard 0 alone would leave room for two more.
        const p = producer({ prefix, shards: { embeddings: 3 }, fairness: false });
        const waiting = await p.embed(Array.from({ length: 9 }, (_, i) => `waiting ${i}`));
        expect(
          byShard(
            waiting.map((h) => h.id),
            3,
          ).map((l) => l.length),
        ).toEqual([3, 3, 3]);
        const two = await running.call('POST', '/v1/embeddings', { texts: ['one more', 'two more'] });
        expect(two.status).toBe(429);
        const one = await running.call('POST', '/v1/embeddings', { text: 'one more' });
        expect(one.status).toBe(202);
      } finally {
        await running.close();
      }
    });
  });
});

/** Shard prefixes of `{fleet}` as the fleet derives them (shardPrefix's aim and search): pinned, jobs live there. */
const PINNED = { e1: '{fleet:embeddings:1:505}', e2: '{fleet:embeddings:2:53}', d1: '{fleet:deals:1:306}' };
