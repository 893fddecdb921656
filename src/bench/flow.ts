import { FlowProducer, type Worker } from 'bullmq';
import IORedis from 'ioredis';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { startPrivateRedis } from '../app/redis-server';
import { QUEUES } from '../contracts/queues';
import { type CollectorResult, type DealWithFigures, SOURCES, WorkflowJobData } from '../contracts/workflows';
import { analyzeCalls, analyzeDeals } from '../flows/analyze';
import { filtersFor } from '../flows/question';
import { type ChildValue, synthesizeReport } from '../flows/report';
import { PooledWarehouse, snowflakeConnector, WarehousePool } from '../pool';
import { createProducer } from '../producers';
import { analyzeTexts } from '../warehouse/queries/analyze-texts';
import { collectSource } from '../warehouse/queries/collect-source';
import { dealFigures, toDeal } from '../workers/deal-figures';
import { createFlowProcessors } from '../workers/flow-processors';
import { runWorker } from '../workers/run-worker';
import type { BenchContext } from './context';
import { round } from './stats';

const QUESTION = 'Which enterprise deals are at risk this quarter, and why?';

/**
 * `fleet bench flow`: every warehouse call takes 200 ms. (1) The same work called one step after another
 * (4 collectors, 2 analysers, synthesis), as the agents were; (2) the BullMQ flow; (3) 200 workflows
 * started together, counting collector statements against the naive 4 per workflow.
 */
export async function runFlowBench(ctx: BenchContext): Promise<Record<string, unknown>> {
  const latencyMs = 200;
  const concurrent = ctx.quick ? 40 : 200;
  const redisServer = await startPrivateRedis();
  const server = await loadLocalSnowflake().startLocalWarehouse({ port: 0, loginLatencyMs: 300, queryLatencyMs: latencyMs, deals: 10_000 });
  const labels: string[] = [];
  const pool = new WarehousePool({
    connector: snowflakeConnector({ account: 'local', username: 'fleet', password: 'fleet', accessUrl: server.url }),
    min: 8,
    max: 8,
  });
  const warehouse = new PooledWarehouse({ pool, onCall: (e) => labels.push(e.label) });
  const redis = () => new IORedis(redisServer.url, { maxRetriesPerRequest: null });
  const conns: IORedis[] = [];
  const workers: Worker[] = [];
  const processors = createFlowProcessors({ warehouse, batching: { maxWaitMs: 5, maxConcurrentBatches: 8 } });
  try {
    await Promise.all(Array.from({ length: 8 }, () => warehouse.query('SELECT 1 AS X')));
    const asOf = new Date().toISOString();
    const data = WorkflowJobData.parse({ question: QUESTION, asOf });

    ctx.log('sequential: 4 collectors, 2 analysers, synthesis, one after another');
    let t = performance.now();
    const f = filtersFor(QUESTION, new Date(asOf));
    const rows: Record<string, Awaited<ReturnType<typeof collectSource>>[number]> = {};
    for (const source of SOURCES) rows[source] = (await collectSource(warehouse, source, [f], f.limit))[0];
    const deals = rows.hubspot.map((r) => toDeal(r as never));
    const dealSent = await analyzeTexts(
      warehouse,
      'deals',
      deals.map((d) => d.id),
    );
    const callIds = rows.gong.map((r) => String(r.ID));
    const callSent = await analyzeTexts(warehouse, 'calls', callIds);
    const at = Date.parse(asOf);
    const values: ChildValue[] = [
      {
        ...analyzeDeals(
          deals.map((deal): DealWithFigures => ({ deal, figures: dealFigures(deal, at), notesSentiment: dealSent.get(deal.id)?.sentiment ?? null })),
        ),
        source: 'hubspot',
      },
      {
        ...analyzeCalls(
          rows.gong.map((r) => ({ id: String(r.ID), title: String(r.TITLE), text: String(r.TRANSCRIPT) })),
          callSent,
        ),
        source: 'gong',
      },
      { source: 'slack', items: [], retrieval: '' } as CollectorResult,
      { source: 'linear', items: [], retrieval: '' } as CollectorResult,
    ];
    synthesizeReport({ ...data, asOf }, values, []);
    const sequentialMs = performance.now() - t;

    const prefix = 'bench-flow';
    for (const [queue, processor] of [
      [QUEUES.collect, processors.collect],
      [QUEUES.analyze, processors.analyze],
      [QUEUES.workflows, processors.synthesize],
    ] as const) {
      const c = redis();
      conns.push(c);
      workers.push(runWorker({ queue, connection: c, prefix, concurrency: 1000, processor: processor as never }));
    }
    const pc = redis();
    conns.push(pc);
    const producer = createProducer({ connection: pc, prefix });

    ctx.log('flow: one workflow');
    // one warm-up workflow so the first measured run does not pay worker start-up
    await (await producer.workflow('warm up question about pricing')).result({ timeoutMs: 30_000 });
    t = performance.now();
    const handle = await producer.workflow(QUESTION, { asOf });
    await handle.result({ timeoutMs: 30_000 });
    const flowMs = performance.now() - t;
    const fp = new FlowProducer({ connection: pc, prefix });
    const tree = await fp.getFlow({ id: handle.id, queueName: QUEUES.workflows, prefix });
    await fp.close();
    const dur = (n: typeof tree): number => (n.job.finishedOn ?? 0) - (n.job.processedOn ?? 0);
    const branch = (n: typeof tree): number => dur(n) + Math.max(0, ...(n.children ?? []).map(branch));
    const slowestBranchMs = Math.max(...(tree.children ?? []).map(branch)) + dur(tree);

    ctx.log(`flow: ${concurrent} workflows started together`);
    labels.length = 0;
    t = performance.now();
    const handles = await Promise.all(
      Array.from({ length: concurrent }, (_, i) =>
        producer.workflow(i % 4 === 0 ? `Which deals mention pricing or budget, batch ${i % 8}?` : QUESTION, { asOf }),
      ),
    );
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
    const concurrentMs = performance.now() - t;
    const collectorCalls = labels.filter((l) => l.startsWith('collect_')).length;
    await producer.close();

    return {
      bench: 'flow',
      warehouse_latency_ms: latencyMs,
      collectors: 4,
      sequential_ms: round(sequentialMs, 1),
      flow_ms: round(flowMs, 1),
      speedup: round(sequentialMs / flowMs, 2),
      slowest_branch_ms: round(slowestBranchMs, 1),
      overhead_ms: round(flowMs - slowestBranchMs, 1),
      concurrent_workflows: concurrent,
      concurrent_total_ms: round(concurrentMs, 1),
      collector_warehouse_calls: collectorCalls,
      naive_collector_calls: concurrent * 4,
      collector_calls_fraction: round(collectorCalls / (concurrent * 4), 3),
      analyser_warehouse_calls: labels.filter((l) => l.startsWith('analyze_')).length,
      overhead_note: 'flow_ms minus the slowest branch (sum of processedOn→finishedOn of its jobs, plus synthesis): queue hops and scheduling',
    };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await processors.close();
    await Promise.all(conns.map((c) => c.quit()));
    await pool.close();
    await server.close();
    await redisServer.stop();
  }
}
