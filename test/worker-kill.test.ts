import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createProducer } from '../src/producers';
import type { LocalWarehouse } from 'local-snowflake';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { startTestWarehouse } from './helpers/warehouse';

const CLI = path.join(__dirname, '..', 'bin', 'fleet.js');

/** A `fleet worker` replica in its own process, as Kubernetes would run it. */
function spawnWorker(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '--role', 'embeddings'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', () => undefined);
  return child;
}

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse({ queryLatencyMs: 400 });
});
afterAll(() => server.close());

describe('a worker killed with SIGKILL mid-batch', () => {
  it('loses no job: stalled jobs are recovered by another worker and all complete', async () => {
    const prefix = uniquePrefix('kill');
    const env = {
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      SNOWFLAKE_ACCESS_URL: server.url,
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      EMBED_BATCH_MAX_WAIT_MS: '50',
      POOL_MAX: '2',
    };
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const first = spawnWorker(env);
    let second: ChildProcess | undefined;
    try {
      const texts = Array.from({ length: 2000 }, (_, i) => `kill test note ${i}`);
      const handles = await producer.embed(texts);
      const queue = producer.queue('embeddings');
      // Wait until the first worker is mid-batch: jobs active, some not yet completed.
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const counts = await queue.getJobCounts('active', 'completed');
        if (counts.active > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = await queue.getJobCounts('active', 'completed', 'waiting');
      expect(before.active).toBeGreaterThan(0);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      second = spawnWorker(env);
      const results = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed).toHaveLength(0);
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting');
      expect(counts).toMatchObject({ completed: 2000, failed: 0, active: 0, waiting: 0 });
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      if (second && second.exitCode === null) await new Promise((r) => second!.once('exit', r));
      await producer.close();
      await redis.quit();
    }
  });
});
