import { FlowProducer, Queue } from 'bullmq';
import type { LocalWarehouse } from 'local-snowflake';
import { WorkflowJobData } from '../src/contracts/workflows';
import { buildWorkflowFlow } from '../src/flows/build-flow';
import { createProducer } from '../src/producers';
import { startProductionApi } from './helpers/api';
import { startFlowWorkers } from './helpers/flow-workers';
import { testRedis, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';

let server: LocalWarehouse;
beforeAll(async () => {
  server = await startTestWarehouse({ deals: 2_000, queryLatencyMs: 150 });
});
afterAll(() => server.close());

const TOKEN = 'flows-http-token-0123456789';
const QUESTION = 'Which enterprise deals are at risk this quarter, and why?';

function setup(name: string) {
  const prefix = uniquePrefix(name);
  const redis = testRedis();
  const producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
  const calls: string[] = [];
  const { pool, warehouse } = pooledClient(server, { max: 8 }, { onCall: (e) => calls.push(e.label) });
  const workers = startFlowWorkers(warehouse, prefix);
  return {
    prefix,
    redis,
    producer,
    calls,
    async close() {
      await workers.close();
      await producer.close();
      await pool.close();
      await redis.quit();
    },
  };
}

describe('workflows as BullMQ flows', () => {
  it('builds the collect → analyze → synthesize tree with the failure policy per source', () => {
    const data = WorkflowJobData.parse({ question: QUESTION, asOf: '2026-11-25T00:00:00Z' });
    const tree = buildWorkflowFlow(data, { workflowId: 'wf-test' });
    const shape = (n: typeof tree): unknown => ({ name: n.name, queue: n.queueName, children: n.children?.map(shape) });
    expect(shape(tree)).toEqual({
      name: 'synthesize',
      queue: 'workflows',
      children: [
        { name: 'analyze-deals', queue: 'analyze', children: [{ name: 'collect-hubspot', queue: 'collect', children: undefined }] },
        { name: 'analyze-calls', queue: 'analyze', children: [{ name: 'collect-gong', queue: 'collect', children: undefined }] },
        { name: 'collect-slack', queue: 'collect', children: undefined },
        { name: 'collect-linear', queue: 'collect', children: undefined },
      ],
    });
    // deal-risk requires hubspot: its steps fail the parent; the others are ignored on failure
    expect(tree.children![0].opts).toMatchObject({ failParentOnFailure: true, jobId: 'wf-test-analyze-deals' });
    expect(tree.children![2].opts).toMatchObject({ ignoreDependencyOnFailure: true });
  });

  it('answers a question with a report; collectors run in parallel', async () => {
    const s = setup('flow-one');
    try {
      const handle = await s.producer.workflow(QUESTION, { asOf: '2026-11-25T00:00:00Z' });
      const report = await handle.result({ timeoutMs: 30_000 });
      expect(report.sourcesUsed).toEqual(['hubspot', 'gong', 'slack', 'linear']);
      expect(report.sourcesMissing).toEqual([]);
      expect(report.deals!.deals.length).toBeGreaterThan(0);
      expect(report.markdown).toMatch(/^# Which enterprise deals are at risk/);
      expect(report.markdown).toMatch(/## Deals at risk/);
      // the four collectors overlap in time
      const collect = new FlowProducer({ connection: s.redis, prefix: s.prefix });
      const flow = await collect.getFlow({ id: handle.id, queueName: 'workflows', prefix: s.prefix });
      const collectors: { id: string; processedOn: number; finishedOn: number }[] = [];
      const walk = (node: typeof flow) => {
        if (node.job.name.startsWith('collect-')) collectors.push({ id: node.job.id!, processedOn: node.job.processedOn!, finishedOn: node.job.finishedOn! });
        node.children?.forEach(walk);
      };
      walk(flow);
      await collect.close();
      expect(collectors).toHaveLength(4);
      // Bull Board's Logs tab: each collector names the batch that served it, the synthesis the sources it used.
      const collectQueue = new Queue('collect', { connection: s.redis, prefix: s.prefix });
      const workflowQueue = new Queue('workflows', { connection: s.redis, prefix: s.prefix });
      try {
        for (const c of collectors) {
          const { logs } = await collectQueue.getJobLogs(c.id);
          expect(logs).toEqual([expect.stringMatching(/^collected \d+ (hubspot|gong|slack|linear) rows in batch \S+ \(\d+ requests\)$/)]);
        }
        expect((await workflowQueue.getJobLogs(handle.id)).logs).toEqual(['report from hubspot, gong, slack, linear']);
      } finally {
        await collectQueue.close();
        await workflowQueue.close();
      }
      const latestStart = Math.max(...collectors.map((c) => c.processedOn));
      const earliestEnd = Math.min(...collectors.map((c) => c.finishedOn));
      expect(latestStart).toBeLessThan(earliestEnd);
    } finally {
      await s.close();
    }
  });

  it('POST /v1/workflows as production wires it: 202 with the workflow, GET follows it to its report, a retried key starts nothing new', async () => {
    const s = setup('flow-http');
    const api = await startProductionApi({ prefix: s.prefix, token: TOKEN });
    try {
      const { call } = api;
      const payload = { question: QUESTION, asOf: '2026-11-25T00:00:00Z' };
      const started = await call('POST', '/v1/workflows', payload, { 'idempotency-key': 'wf-http-1' });
      expect(started.status).toBe(202);
      const body = (await started.json()) as { id: string; href: string; state: string };
      expect(body).toEqual({
        id: expect.stringMatching(/^wf-/),
        queue: 'workflows',
        tenant: 'default',
        state: expect.any(String),
        href: `/v1/workflows/${body.id}`,
        buffered: false,
        idempotencyKey: 'wf-http-1',
      });
      expect(started.headers.get('location')).toBe(body.href);
      // The same key again: the same workflow, not a second tree of collectors.
      const again = (await (await call('POST', '/v1/workflows', payload, { 'idempotency-key': 'wf-http-1' })).json()) as { id: string };
      expect(again.id).toBe(body.id);
      let state: { state: string; report: { sourcesUsed: string[] } | null; dependencies: Record<string, number> } | undefined;
      await waitUntil(
        'the workflow to complete',
        async () => {
          state = (await (await call('GET', body.href)).json()) as typeof state;
          return state!.state === 'completed';
        },
        { everyMs: 100 },
      );
      expect(state!.report!.sourcesUsed).toEqual(['hubspot', 'gong', 'slack', 'linear']);
      expect(state!.dependencies).toMatchObject({ processed: 4 });
      const collect = new Queue('collect', { connection: s.redis, prefix: s.prefix });
      expect(await collect.getJobCountByTypes('completed')).toBe(4);
      await collect.close();
      expect((await call('POST', '/v1/workflows', { question: '' })).status).toBe(400);
      expect((await call('GET', '/v1/workflows/wf-nope')).status).toBe(404);
    } finally {
      await api.close();
      await s.close();
    }
  });

  it('a failing optional collector yields a partial report that names the gap', async () => {
    const s = setup('flow-partial');
    server.setFault({ mode: 'error', sqlPattern: 'SLACK_MESSAGES' });
    try {
      const report = await (await s.producer.workflow(QUESTION)).result({ timeoutMs: 30_000 });
      expect(report.sourcesUsed).toEqual(['hubspot', 'gong', 'linear']);
      expect(report.sourcesMissing).toEqual([{ source: 'slack', reason: expect.stringMatching(/./) }]);
      expect(report.markdown).toMatch(/Partial report/);
      expect(report.markdown).toMatch(/slack: \*\*missing\*\*/);
    } finally {
      server.setFault({ mode: 'none' });
      await s.close();
    }
  });

  it('a failing required collector fails the workflow visibly', async () => {
    const s = setup('flow-required');
    server.setFault({ mode: 'error', sqlPattern: 'FROM \\(VALUES .* JOIN DEALS' });
    try {
      const handle = await s.producer.workflow(QUESTION);
      await expect(handle.result({ timeoutMs: 30_000 })).rejects.toThrow(/failed/);
    } finally {
      server.setFault({ mode: 'none' });
      await s.close();
    }
  });

  it('50 concurrent workflows make far fewer than 4 × 50 collector queries', async () => {
    const s = setup('flow-50');
    try {
      const questions = Array.from({ length: 50 }, (_, i) => (i % 5 === 0 ? `Which deals mention pricing ${i}?` : QUESTION));
      const handles = await Promise.all(questions.map((q) => s.producer.workflow(q)));
      const reports = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      expect(reports).toHaveLength(50);
      const collectorCalls = s.calls.filter((l) => l.startsWith('collect_')).length;
      expect(collectorCalls).toBeLessThan(0.25 * 4 * 50);
    } finally {
      await s.close();
    }
  });
});
