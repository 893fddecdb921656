import type { Cluster, Redis } from 'ioredis';
import { TenantLimitError } from '../contracts/errors';
import type { QueueName } from '../contracts/queues';
import { LuaCommand } from '../redis-lua/lua-command';
import { type FairnessSettings, policyOf, RATE_WINDOW_S } from './settings';

/**
 * Fair service between tenants on BullMQ OSS, from two facts of BullMQ's `moveToActive`: a worker takes the
 * oldest job of the FIFO `wait` list, and only when that list is empty the best job of the `prioritized` set.
 *
 * Each tenant has a few *slots* (`slots x weight`) in `wait`. A tenant's job takes a free slot (added without
 * a priority, to the back of `wait`) or is *parked* (added with a priority, to `prioritized`, ranked by its
 * place in its tenant's line divided by the weight). When a job finishes, its slot goes to its tenant's
 * oldest parked job, which moves to the back of `wait`. So `wait` holds at most a few jobs of each tenant
 * with work: a tenant that enqueues 500 jobs behind another's 50,000 waits behind at most the other's slots,
 * not its backlog; each tenant's jobs keep their order; idle workers still take parked jobs (nothing waits
 * while a worker is free). Redis work per job is O(log n) and independent of the number of tenants: one
 * script per enqueue call, one per batch of finished jobs.
 *
 * Keys, under the queue's own (`<prefix>:<queue>:fair:`), so they share its hash tag and go with it:
 *   adm:<tenant>  ZSET job id → time it took a slot (waiting in `wait`, running, or retrying)
 *   park:<tenant> ZSET job id → when it was parked (ms x 4096 + a counter; parked: in `prioritized`)
 *   rate:<tenant> HASH tokens, ts (the per-tenant rate limit's bucket)
 *   tenants       SET of tenants with jobs in either set; seq: the last park score
 * `queued` (what `maxQueued` bounds) = |adm| + |park|.
 *
 * At-least-once: releasing a job twice is a no-op (ZREM); a release lost with a killed worker, a job removed
 * by an operator, or an enqueue that died between its admission and its add leave a stale slot that
 * `reconcile` (run by every worker of the queue) frees once the job is gone or finished.
 */

/** BullMQ's highest priority number (lowest priority). */
const MAX_PRIORITY = 2_097_152;

/** Park scores are the time a job was parked in ms times this, plus a counter (below 2^53 until 2039). */
const PARK_SCORE_PER_MS = 4096;
/** How long a parked job may lack its hash (its producer's add still on the way) before a refill drops it. */
const ADD_GRACE_MS = 60_000;

/** Shared Lua: move parked jobs of tenant `t` into free slots (BullMQ's changePriority to 0, for many jobs). */
const REFILL_LUA = `
local function pausedOrMaxed(bp)
  local attrs = redis.call('HMGET', bp .. 'meta', 'paused', 'concurrency')
  if attrs[1] then return true end
  if attrs[2] then return redis.call('LLEN', bp .. 'active') >= tonumber(attrs[2]) end
  return false
end
-- Fills tenant t's free slots from its parked jobs, oldest first. Returns jobs moved to wait. A parked job
-- whose hash does not exist yet is skipped while its admission is recent (its producer's add may still be on
-- the way: dropping it would leave the job in prioritized, tracked by no lane) and dropped after the grace.
local function refill(fp, bp, t, slots, now)
  local adm, park = fp .. 'adm:' .. t, fp .. 'park:' .. t
  local n = redis.call('ZCARD', adm)
  local moved, idx, budget = 0, 0, 1000
  while n < slots and budget > 0 do
    budget = budget - 1
    local p = redis.call('ZRANGE', park, idx, idx, 'WITHSCORES')
    if #p == 0 then break end
    local id, parkedAt = p[1], tonumber(p[2]) / ${PARK_SCORE_PER_MS}
    local jk = bp .. id
    if redis.call('EXISTS', jk) == 0 then
      if parkedAt > now - ${ADD_GRACE_MS} then idx = idx + 1 else redis.call('ZREM', park, id) end
    elseif redis.call('HEXISTS', jk, 'finishedOn') == 1 then
      redis.call('ZREM', park, id)
    else
      redis.call('ZREM', park, id)
      -- In prioritized: move it to the back of wait, as BullMQ's changePriority(0) does. Otherwise it is
      -- running (an idle worker took it) or retrying: it holds the slot until it finishes.
      if redis.call('ZREM', bp .. 'prioritized', id) == 1 then
        redis.call('LPUSH', bp .. 'wait', id)
        redis.call('HSET', jk, 'priority', 0)
        moved = moved + 1
      end
      redis.call('ZADD', adm, now, id)
      n = n + 1
    end
  end
  if moved > 0 and not pausedOrMaxed(bp) then redis.call('ZADD', bp .. 'marker', 0, '0') end
  if n == 0 and redis.call('ZCARD', park) == 0 then redis.call('SREM', fp .. 'tenants', t) end
  return moved
end
`;

/**
 * Admits the calls of one flush, each all-or-nothing on its own. KEYS[1]: the queue's `tenants` set (routes the
 * script to the queue's slot). ARGV: fair prefix, bull prefix, now, then per call: tenant, slots, weight,
 * maxQueued, rate (0 = none), burst, pinned (1: the caller chose a priority), n, then its n job ids.
 * Reply: per call {1, class per id} with class 0 = a slot (add without priority), p > 0 = parked at priority p,
 * -1 = the job exists already (the add is a no-op); {-1, queued} over maxQueued; {-2, retry ms} over the rate.
 */
const ADMIT_LUA = `
local fp, bp, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seqKey = fp .. 'seq'
local last = tonumber(redis.call('GET', seqKey) or '0')
local function admit(t, slots, weight, maxQueued, rate, burst, pinned, first, n)
  local admKey, parkKey = fp .. 'adm:' .. t, fp .. 'park:' .. t
  local out, fresh = {1}, 0
  for i = first, first + n - 1 do
    local id = ARGV[i]
    if redis.call('ZSCORE', admKey, id) then
      out[#out + 1] = 0
    elseif redis.call('ZSCORE', parkKey, id) then
      out[#out + 1] = math.min(${MAX_PRIORITY}, 1 + math.floor(redis.call('ZRANK', parkKey, id) / weight))
    elseif redis.call('EXISTS', bp .. id) == 1 then
      out[#out + 1] = -1
    else
      out[#out + 1] = false
      fresh = fresh + 1
    end
  end
  if fresh == 0 then return out end
  local adm, parked = redis.call('ZCARD', admKey), redis.call('ZCARD', parkKey)
  if adm + parked + fresh > maxQueued then return {-1, adm + parked} end
  if rate > 0 then
    local rateKey = fp .. 'rate:' .. t
    local b = redis.call('HMGET', rateKey, 'tokens', 'ts')
    local tokens = tonumber(b[1]) or burst
    local ts = tonumber(b[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
    if tokens < fresh then return {-2, math.ceil((fresh - tokens) * 1000 / rate)} end
    redis.call('HSET', rateKey, 'tokens', tostring(tokens - fresh), 'ts', now)
    redis.call('PEXPIRE', rateKey, math.ceil(burst * 1000 / rate) + 1000)
  end
  for i = 2, #out do
    if out[i] == false then
      local id = ARGV[first + i - 2]
      if pinned or adm < slots then
        redis.call('ZADD', admKey, now, id)
        adm = adm + 1
        out[i] = 0
      else
        -- Score: the time it was parked (BullMQ's delayed-set trick: ms x 4096 + a counter), kept increasing
        -- so a bulk of thousands in one ms keeps its order. Written as an integer string (no float formatting).
        last = math.max(now * ${PARK_SCORE_PER_MS}, last + 1)
        redis.call('ZADD', parkKey, string.format('%.0f', last), id)
        out[i] = math.min(${MAX_PRIORITY}, 1 + math.floor(parked / weight))
        parked = parked + 1
      end
    end
  end
  redis.call('SADD', fp .. 'tenants', t)
  return out
end
local replies, a = {}, 4
while a <= #ARGV do
  local n = tonumber(ARGV[a + 7])
  replies[#replies + 1] = admit(ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ARGV[a + 6] == '1', a + 8, n)
  a = a + 8 + n
end
redis.call('SET', seqKey, string.format('%.0f', last))
return replies`;

/**
 * ARGV: fair prefix, bull prefix, now, JSON {r = [[tenant, id], …], s = {tenant: slots}}.
 * Frees the slots (or parked places) of finished jobs, then refills each tenant named. Reply: jobs moved to wait.
 */
const RELEASE_LUA = `${REFILL_LUA}
local fp, bp, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local spec = cjson.decode(ARGV[4])
local touched = {}
for _, r in ipairs(spec.r) do
  redis.call('ZREM', fp .. 'adm:' .. r[1], r[2])
  redis.call('ZREM', fp .. 'park:' .. r[1], r[2])
  touched[r[1]] = true
end
local moved = 0
for t in pairs(touched) do moved = moved + refill(fp, bp, t, tonumber(spec.s[t]) or 1, now) end
return moved`;

/**
 * ARGV: fair prefix, bull prefix, now, grace ms, JSON {tenant: slots} of named tenants, default slots, default
 * weight-less slots. For every tenant with work: frees slots held longer than the grace by jobs that are
 * gone or finished (a lost release), then refills. Reply: {slots freed, jobs moved to wait}.
 */
const RECONCILE_LUA = `${REFILL_LUA}
local fp, bp, now, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local named, dflt = cjson.decode(ARGV[5]), tonumber(ARGV[6])
local freed, moved = 0, 0
for _, t in ipairs(redis.call('SMEMBERS', fp .. 'tenants')) do
  local adm = fp .. 'adm:' .. t
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', adm, '-inf', now - grace)) do
    local jk = bp .. id
    if redis.call('EXISTS', jk) == 0 or redis.call('HEXISTS', jk, 'finishedOn') == 1 then
      redis.call('ZREM', adm, id)
      freed = freed + 1
    end
  end
  moved = moved + refill(fp, bp, t, tonumber(named[t]) or dflt, now)
end
return {freed, moved}`;

/** ARGV: fair prefix. Reply: flat list tenant, |adm|, |park| for every tenant with work. */
const STATS_LUA = `
local out = {}
for _, t in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'tenants')) do
  out[#out + 1] = t
  out[#out + 1] = redis.call('ZCARD', ARGV[1] .. 'adm:' .. t)
  out[#out + 1] = redis.call('ZCARD', ARGV[1] .. 'park:' .. t)
end
return out`;

const admitScript = new LuaCommand('fleetFairAdmit', ADMIT_LUA);
const releaseScript = new LuaCommand('fleetFairRelease', RELEASE_LUA);
const reconcileScript = new LuaCommand('fleetFairReconcile', RECONCILE_LUA);
const statsScript = new LuaCommand('fleetFairStats', STATS_LUA);

/** Where each job of an admitted call goes: `undefined` = a slot (no priority), a number = parked at that priority. */
type Placement = number | undefined;

/** One tenant's jobs on a queue, as counted in Redis. */
export interface TenantCounts {
  tenant: string;
  /** Jobs holding a slot: waiting in the FIFO list, running, or retrying. */
  slotted: number;
  /** Jobs parked behind the tenant's slots. */
  parked: number;
}

/** How long a slot whose job is gone or finished may stay taken before `reconcile` frees it (an enqueue's admit-to-add gap is far shorter). */
const RECONCILE_GRACE_MS = 60_000;

/** A queue's tenant lanes in Redis: admission for producers, release and reconciliation for workers. */
export class TenantLanes {
  private readonly fp: string;
  private readonly bp: string;

  private readonly redis: Promise<Redis | Cluster>;
  /**
   * KEYS of the scripts that name their keys from ARGV (release, reconcile, stats): unused by them, but on a
   * Redis Cluster a script is sent to the node of its first key, and every key of the lanes shares its slot.
   */
  private readonly routing: readonly string[];

  constructor(
    /** A command connection (not a blocking one), or a promise of it (a BullMQ worker's `client`). */
    redis: Redis | Cluster | Promise<Redis | Cluster>,
    /** BullMQ key prefix (`{fleet}`). */
    prefix: string,
    readonly queue: QueueName,
    readonly settings: FairnessSettings,
  ) {
    this.redis = Promise.resolve(redis);
    this.redis.catch(() => undefined);
    this.bp = `${prefix}:${queue}:`;
    this.fp = `${this.bp}fair:`;
    this.routing = [`${this.fp}tenants`];
  }

  /** Slots of `tenant`: `slots x weight`. */
  slotsOf(tenant: string): number {
    return this.settings.slots * policyOf(this.settings, tenant).weight;
  }

  /**
   * Admits a call's jobs for `tenant` (all or none): where each goes, in `ids` order. `pinned`: the caller
   * chose a BullMQ priority; the jobs count against the tenant's limits and slots but keep that priority.
   * Throws TenantLimitError when the new jobs would put the tenant over `maxQueued` or its rate.
   */
  async admit(tenant: string, ids: readonly string[], opts: { pinned?: boolean } = {}): Promise<Placement[]> {
    const [placed] = await this.admitMany([{ tenant, ids, pinned: opts.pinned }]);
    if (placed instanceof Error) throw placed;
    return placed;
  }

  /**
   * `admit` for several calls in one script call (each all-or-nothing on its own, in order): per call its placements, or the TenantLimitError that refused it. Rejects only when Redis does
   * not answer (then nothing is known of any call; admitting again is safe).
   */
  async admitMany(calls: readonly { tenant: string; ids: readonly string[]; pinned?: boolean }[]): Promise<(Placement[] | TenantLimitError)[]> {
    const policies = calls.map((c) => policyOf(this.settings, c.tenant));
    const args: (string | number)[] = [this.fp, this.bp, Date.now()];
    calls.forEach(({ tenant, ids, pinned }, i) => {
      const p = policies[i];
      const rate = p.ratePerS ?? 0;
      args.push(tenant, this.slotsOf(tenant), p.weight, p.maxQueued, rate, rate * RATE_WINDOW_S, pinned ? 1 : 0, ids.length, ...ids);
    });
    // One script call for the whole flush: the per-call work is Redis's, not another command to write and parse.
    const replies = (await admitScript.run(await this.redis, this.routing, args)) as (number | null)[][];
    return calls.map(({ tenant, ids }, i) => {
      const reply = replies[i];
      const p = policies[i];
      if (reply[0] === -1) return new TenantLimitError(tenant, this.queue, 'queued', p.maxQueued, Number(reply[1]), 1000, ids.length);
      if (reply[0] === -2) return new TenantLimitError(tenant, this.queue, 'rate', p.ratePerS ?? 0, 0, Number(reply[1]), ids.length);
      // -1: the job exists, its add is a no-op; any placement serves.
      return reply.slice(1).map((c) => (c === 0 || c === -1 || c === null ? undefined : Number(c)));
    });
  }

  /** Frees the slots of finished jobs and moves each tenant's next parked jobs up. Idempotent. Resolves with the jobs moved to wait. */
  async release(finished: readonly { tenant: string; jobId: string }[]): Promise<number> {
    if (finished.length === 0) return 0;
    const s: Record<string, number> = {};
    for (const f of finished) s[f.tenant] ??= this.slotsOf(f.tenant);
    const spec = JSON.stringify({ r: finished.map((f) => [f.tenant, f.jobId]), s });
    return Number(await releaseScript.run(await this.redis, this.routing, [this.fp, this.bp, Date.now(), spec]));
  }

  /** Frees slots held by jobs that are gone or finished for longer than `graceMs`, and refills every tenant. */
  async reconcile(graceMs = RECONCILE_GRACE_MS): Promise<{ freed: number; moved: number }> {
    const named: Record<string, number> = {};
    for (const tenant of Object.keys(this.settings.tenants)) named[tenant] = this.slotsOf(tenant);
    const [freed, moved] = (await reconcileScript.run(await this.redis, this.routing, [
      this.fp,
      this.bp,
      Date.now(),
      graceMs,
      JSON.stringify(named),
      this.settings.slots * this.settings.defaults.weight,
    ])) as [number, number];
    return { freed: Number(freed), moved: Number(moved) };
  }

  /** Every tenant with jobs on the queue, with its counts. O(tenants). */
  async counts(): Promise<TenantCounts[]> {
    const flat = (await statsScript.run(await this.redis, this.routing, [this.fp])) as (string | number)[];
    const out: TenantCounts[] = [];
    for (let i = 0; i < flat.length; i += 3) out.push({ tenant: String(flat[i]), slotted: Number(flat[i + 1]), parked: Number(flat[i + 2]) });
    return out;
  }
}
