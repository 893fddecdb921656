import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import IORedis from 'ioredis';
import { freePorts, type PrivateRedis, startPrivateRedis } from '../app/redis-server';

const run = promisify(execFile);

/** One master of a private cluster: its server and the slot ranges it serves. */
interface ClusterMaster {
  readonly redis: PrivateRedis;
  readonly slots: readonly [number, number][];
}

export interface PrivateCluster {
  /** REDIS_CLUSTER_NODES for the fleet: `127.0.0.1:P1,…`. */
  readonly seeds: string;
  readonly masters: readonly ClusterMaster[];
  /** The master serving `slot`. */
  masterOf(slot: number): ClusterMaster;
  /** Stops every node (by its pid) and removes their directories. */
  stop(): Promise<void>;
}

/**
 * A private Redis Cluster of `masters` masters and no replicas on loopback, for `fleet bench scale --shards`:
 * `redis-server --cluster-enabled yes` processes (the same binary and settings as startPrivateRedis) joined by
 * `redis-cli --cluster create`, which splits the 16,384 slots evenly. Every node is stopped by its own handle.
 */
export async function startPrivateCluster(masters = 3): Promise<PrivateCluster> {
  const nodes: PrivateRedis[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const pick = freePorts();
    for (let i = 0; i < masters; i++) {
      // The bus port is chosen free too: port + 10000 (the default) may be taken or past 65535.
      const [port, busPort] = [await pick(), await pick()];
      nodes.push(
        await startPrivateRedis({
          port,
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', '5000'],
        }),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 60_000,
    });
    const slots = new Map<number, [number, number][]>();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(
        nodes.map(async (n) => {
          const c = new IORedis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            await c.connect();
            return String(await c.cluster('INFO'));
          } finally {
            c.disconnect();
          }
        }),
      );
      if (states.every((s) => s.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error('the private Redis Cluster did not reach cluster_state:ok within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = new IORedis(nodes[0].port, '127.0.0.1');
    try {
      for (const [start, end, [, port]] of await c.cluster('SLOTS')) {
        const list = slots.get(port) ?? [];
        list.push([start, end]);
        slots.set(port, list);
      }
    } finally {
      c.disconnect();
    }
    const ms: ClusterMaster[] = nodes.map((redis) => ({ redis, slots: slots.get(redis.port) ?? [] }));
    return {
      seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
      masters: ms,
      masterOf(slot) {
        const m = ms.find((x) => x.slots.some(([a, b]) => slot >= a && slot <= b));
        if (!m) throw new Error(`no master serves slot ${slot}`);
        return m;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
