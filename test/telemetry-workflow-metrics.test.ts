import { Queue, type Worker } from 'bullmq';
import IORedis from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { JOB_NAMES, QUEUES } from '../src/contracts/queues';
import { createProducer } from '../src/producers';
import { createMetricsRegistry } from '../src/telemetry';
import { createFlowProcessors } from '../src/workers/flow-processors';
import { runWorker } from '../src/workers/run-worker';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

/** `fleet_workflow_duration_ms{workflow, outcome}` samples of an exposition, as `workflow/outcome → count`. */
function workflowCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^fleet_workflow_duration_ms_count\{([^}]*)\} (\S+)$/gm)) {
    const workflow = /workflow="([^"]*)"/.exec(m[1])![1];
    const outcome = /outcome="([^"]*)"/.exec(m[1])![1];
    out[`${workflow}/${outcome}`] = Number(m[2]);
  }
  return out;
}

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse();
});
afterAll(() => server.close());

describe('telemetry: a workflow is timed by its synthesis, from the start of the flow to its report', () => {
  it('records ok with the workflow type when the report is made, and error when the synthesis fails for good', async () => {
    const prefix = uniquePrefix('wf-metrics');
    const registry = createMetricsRegistry();
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const { pool, warehouse } = pooledClient(server);
    const processors = createFlowProcessors({ warehouse, batching: { maxWaitMs: 20 }, metrics: registry.metrics });
    const connections: IORedis[] = [];
    const workers: Worker[] = [];
    for (const [queue, processor] of [
      [QUEUES.collect, processors.collect],
      [QUEUES.analyze, processors.analyze],
      [QUEUES.workflows, processors.synthesize],
    ] as const) {
      const connection = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
      connections.push(connection);
      workers.push(runWorker({ queue, connection, prefix, concurrency: 50, processor: processor as never }));
    }
    const workflows = new Queue(QUEUES.workflows, { connection: redis, prefix });
    try {
      const report = await (await producer.workflow('Which deals are at risk?', { type: 'general' })).result({ timeoutMs: 60_000 });
      expect(report.type).toBe('general');
      expect(workflowCounts(await registry.endpoint.render())).toEqual({ 'general/ok': 1 });

      // A synthesis job whose data no longer validates fails at once (unrecoverable): a failed workflow.
      const broken = await workflows.add(JOB_NAMES.synthesize, { question: '', type: 'deal-risk' }, { attempts: 3 });
      await waitUntil('the broken workflow to fail', async () => (await broken.getState()) === 'failed');
      expect(workflowCounts(await registry.endpoint.render())).toEqual({ 'general/ok': 1, 'deal-risk/error': 1 });
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await processors.close();
      await workflows.close();
      await producer.close();
      await pool.close();
      await Promise.all([...connections, redis].map((c) => c.quit()));
      await registry.shutdown();
    }
  });
});
