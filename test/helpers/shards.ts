import net from 'node:net';
import type { Redis } from 'ioredis';
import { type RunningFleet, startFleet } from '../../src/app/fleet';
import { freePort } from '../../src/app/redis-server';
import { loadConfig } from '../../src/config';
import type { QueueName } from '../../src/contracts/queues';
import { clusterSlot, shardOfJobId, shardPrefix } from '../../src/contracts/shards';
import { createLogger } from '../../src/telemetry';
import { testRedisUrl, uniquePrefix } from './redis';

/**
 * Sharded queues in tests (test/sharded-queues.test.ts): prefixes with a hash tag of their own, a fleet started
 * in-process as `fleet worker` / `fleet api` start it, and what Redis says about each job of every shard.
 */

/** A unique queue prefix that is a hash tag (`{t-name-1234abcd}`): sharded queues vary the tag per shard. */
export function shardedPrefix(name: string): string {
  return `{${uniquePrefix(name)}}`;
}

/**
 * The fleet's roles in this process (startFleet, as `fleet worker` / `fleet api` start them), configured by
 * variables alone: this worker's Redis, the test's warehouse at `warehouseUrl`, `prefix`, plus `env`
 * (FLEET_QUEUE_SHARDS…). With `api`, the HTTP API on a free loopback port. Caller closes it (one at a time:
 * telemetry is per process).
 */
export function startShardedFleet(opts: {
  prefix: string;
  warehouseUrl: string;
  env: Record<string, string>;
  roles?: readonly ('embeddings' | 'deals')[];
  api?: boolean;
}): Promise<RunningFleet> {
  const config = loadConfig({
    REDIS_URL: testRedisUrl(),
    FLEET_QUEUE_PREFIX: opts.prefix,
    SNOWFLAKE_ACCESS_URL: opts.warehouseUrl,
    CACHE_ENABLED: 'false',
    POOL_MIN: '0',
    POOL_MAX: '2',
    PORT: '0',
    LOG_LEVEL: 'error',
    ...opts.env,
  });
  return startFleet(config, {
    roles: opts.roles ?? ['embeddings'],
    embeddedRedis: false,
    embeddedWarehouse: false,
    logger: createLogger({ level: 'error', secrets: config.secrets }),
    ...(opts.api ? { api: { host: '127.0.0.1' } } : {}),
  });
}

/** Every `completed` event of each job of `queue`'s shards 0…shards-1, by job id (BullMQ's event streams). */
export async function completionsByJob(redis: Redis, prefix: string, queue: QueueName, shards: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let k = 0; k < shards; k++) {
    const key = `${shardPrefix(prefix, queue, k)}:${queue}:events`;
    for (let start = '-'; ; ) {
      const page = await redis.xrange(key, start, '+', 'COUNT', 1000);
      for (const [, fields] of page) {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
        if (f.get('event') === 'completed') {
          const id = f.get('jobId')!;
          out.set(id, (out.get(id) ?? 0) + 1);
        }
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1][0]}`;
    }
  }
  return out;
}

/**
 * The ids of every job hash in each shard of `queue` (whatever its state), by shard index, read from the keys
 * themselves, so a job no state list shows is still counted.
 */
export async function jobIdsByShard(redis: Redis, prefix: string, queue: QueueName, shards: number): Promise<string[][]> {
  const out: string[][] = [];
  for (let k = 0; k < shards; k++) {
    const base = `${shardPrefix(prefix, queue, k)}:${queue}:`;
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const rest = key.slice(base.length);
        // A job's side keys (`…:<id>:logs`) and the fleet's indexes have a colon; BullMQ's `meta` is a hash without `data`.
        if (rest.includes(':') || (await redis.type(key)) !== 'hash') continue;
        if (await redis.hexists(key, 'data')) ids.push(rest);
      }
    } while (cursor !== '0');
    out.push(ids.sort());
  }
  return out;
}

/** The id without its shard mark (`s2.idem-…` → `idem-…`): the same job under any layout has the same one. */
export const unmarked = (id: string): string => (shardOfJobId(id) === 0 ? id : id.slice(id.indexOf('.') + 1));

/** Deletes every key of the test's prefix and of its shards (`{t-…}`, `{t-…:embeddings:2}`…). */
export async function removeShardedKeys(redis: Redis, prefix: string): Promise<void> {
  const tag = /\{([^{}]+)\}/.exec(prefix)![1];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*{${tag}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/**
 * A Redis address that answers nothing until `open()`: a producer pointed at it buffers its enqueues (Redis
 * unreachable), then flushes them once `open()` forwards the port to this worker's Redis.
 */
export async function lateRedis(): Promise<{ url: string; open(): Promise<void>; close(): Promise<void> }> {
  const port = await freePort();
  const target = new URL(testRedisUrl());
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    open: () =>
      new Promise<void>((resolve, reject) => {
        server = net.createServer((client) => {
          const upstream = net.connect(Number(target.port), target.hostname);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('error', () => undefined);
            s.on('close', () => {
              sockets.delete(s);
              client.destroy();
              upstream.destroy();
            });
          }
          client.pipe(upstream).pipe(client);
        });
        server.on('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

/** A script call (EVAL, EVALSHA, FCALL…) whose keys are in more than one slot: refused by a Redis Cluster. */
export interface CrossSlotCall {
  command: string;
  keys: string[];
}

/** The arguments of one MONITOR line (`1700000000.1 [0 127.0.0.1:5000] "evalsha" "…" "2" "k1" "k2"`), unescaped. */
function monitorArgs(line: string): { source: string; args: string[] } {
  const source = /^\S+ \[\d+ ([^\]]*)\]/.exec(line)?.[1] ?? '';
  const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) =>
    m[1].replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) =>
      e.length === 3
        ? String.fromCharCode(Number.parseInt(e.slice(1), 16))
        : (({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' } as Record<string, string>)[e] ?? e),
    ),
  );
  return { source, args };
}

/**
 * Watches every script call on this worker's Redis (MONITOR, on a socket of its own) until `stop()`: a single
 * Redis runs a script over keys of several slots, a cluster refuses it with CROSSSLOT, so this is how a test on
 * one Redis checks that the shards' work stays within one slot per call. Commands run by scripts are left out.
 */
export async function watchScriptSlots(): Promise<{ calls(): number; stop(): Promise<CrossSlotCall[]> }> {
  const target = new URL(testRedisUrl());
  const socket = net.connect(Number(target.port), target.hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const crossSlot: CrossSlotCall[] = [];
  let calls = 0;
  let pending = '';
  let started!: () => void;
  const ok = new Promise<void>((resolve) => {
    started = resolve;
  });
  const SCRIPTS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf('\r\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 2);
      nl = pending.indexOf('\r\n');
      if (line === '+OK') started();
      if (!line.startsWith('+') || line === '+OK') continue;
      const { source, args } = monitorArgs(line.slice(1));
      const command = args[0]?.toLowerCase();
      if (!SCRIPTS.has(command) || source === 'lua') continue;
      calls++;
      const keys = args.slice(3, 3 + Number(args[2]));
      if (new Set(keys.map(clusterSlot)).size > 1) crossSlot.push({ command, keys });
    }
  });
  socket.write('MONITOR\r\n');
  await ok;
  return {
    calls: () => calls,
    stop: async () => {
      // Whatever MONITOR has already sent is read before the socket goes.
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.destroy();
      return crossSlot;
    },
  };
}
