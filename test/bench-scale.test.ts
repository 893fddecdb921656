import path from 'node:path';
import { launchFleet } from './helpers/processes';

const root = path.resolve(__dirname, '..');

/**
 * `fleet bench scale --shards 1,3` (issue #21) through the real CLI at smoke size: a private three-master Redis
 * Cluster, the embeddings queue in one shard and then in three, drained by two `fleet worker --role embeddings`
 * replicas on REDIS_CLUSTER_NODES. Speed is not asserted; where the commands go is: one shard puts the queue's
 * commands on one master, three shards put about a third on each of the three.
 */
describe('fleet bench scale --shards (smoke run, where the commands go)', () => {
  it('prints one JSON object last, with each shard on its own master carrying its share of the commands', async () => {
    const { code, stdout, stderr } = await launchFleet(['bench', 'scale', '--shards', '1,3', '--quick', '--json'], {
      cwd: root,
      env: { LOG_LEVEL: 'warn' },
    }).finished(240_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]) as {
      mode: string;
      shards: number[];
      jobs_per_s: number[];
      busiest_master_command_share: number[];
      per_master: { shards: number[]; command_share: number; commands_per_job: number; redis_cpu_us_per_job: number }[][];
    };
    expect(r).toMatchObject({ bench: 'scale', mode: 'sharded', shards: [1, 3], cluster_masters: 3, jobs: 2_000 });
    expect(r.jobs_per_s.every((x) => x > 0)).toBe(true);
    const [one, three] = r.per_master;
    // One shard: one master holds it and carries nearly every command.
    expect(one.filter((m) => m.shards.length > 0).map((m) => m.shards)).toEqual([[0]]);
    expect(r.busiest_master_command_share[0]).toBeGreaterThan(0.9);
    // Three shards on three masters, each carrying about a third.
    expect(three.map((m) => m.shards.length).sort()).toEqual([1, 1, 1]);
    expect(three.flatMap((m) => m.shards).sort()).toEqual([0, 1, 2]);
    for (const m of three) expect(m.command_share).toBeGreaterThan(0.2);
    expect(r.busiest_master_command_share[1]).toBeLessThan(0.5);
  }, 300_000);
});
