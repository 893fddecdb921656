import type { JobType, Queue } from 'bullmq';
import { shardOfJobId, shardOfPrefix } from '../contracts/shards';
import type { BacklogSource } from './backlog';

/**
 * The queues the API serves, by name. A sharded queue (FLEET_QUEUE_SHARDS) is several BullMQ queues of one
 * name, one per shard, each under its own prefix: lookups find a job's shard from its id, and counts and
 * indexes are read from every shard, so a caller never names a shard.
 */
export class QueueSet {
  private readonly byName = new Map<string, Queue[]>();

  constructor(queues: readonly Queue[]) {
    for (const q of queues) {
      const list = this.byName.get(q.name) ?? [];
      list.push(q);
      this.byName.set(q.name, list);
    }
    for (const list of this.byName.values()) list.sort((a, b) => this.shardOf(a) - this.shardOf(b));
  }

  /** The shard index of one of the set's queues. */
  shardOf(queue: Queue): number {
    return shardOfPrefix(queue.opts.prefix ?? '', queue.name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Every queue, each shard on its own. */
  all(): Queue[] {
    return [...this.byName.values()].flat();
  }

  /** The shards of `name`, shard 0 first (empty when the set does not serve it). */
  shards(name: string): readonly Queue[] {
    return this.byName.get(name) ?? [];
  }

  /** The shard of `name` a job id names (`s2.…` → shard 2), or undefined when the set does not serve it. */
  ofJob(name: string, id: string): Queue | undefined {
    const shards = this.shards(name);
    const k = shardOfJobId(id);
    return shards.find((q) => this.shardOf(q) === k) ?? (k === 0 ? shards[0] : undefined);
  }

  /** The backlog of `name` summed over its shards, as the API's backlog bound reads it. */
  backlogSource(name: string): BacklogSource {
    const shards = this.shards(name);
    if (shards.length === 1) return shards[0];
    return {
      name,
      async getJobCounts(...states: JobType[]) {
        const counts = await Promise.all(shards.map((q) => q.getJobCounts(...states)));
        const sum: Record<string, number> = {};
        for (const c of counts) for (const [state, n] of Object.entries(c)) sum[state] = (sum[state] ?? 0) + n;
        return sum;
      },
    };
  }
}
