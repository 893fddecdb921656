import type { Job } from 'bullmq';
import type { LocalWarehouse } from 'local-snowflake';
import type { DealInsightsResult } from '../src/contracts/deals';
import type { WorkflowReport } from '../src/contracts/workflows';
import { createProducer, type JobHandle } from '../src/producers';
import { countCompletedEvents, countLogRows, faultReplicaEnv, moreThanOnce, type Replica, reportFault, startReplica } from './helpers/faults';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { sleep, waitUntil } from './helpers/wait';
import { startTestWarehouse } from './helpers/warehouse';

/**
 * The fault suite's SIGKILL, for the deals and flows roles (test/faults-kill.test.ts does the embeddings role):
 * a replica (the real CLI, its own process) is killed while it holds jobs, a fresh one takes over, and
 * stalled-job recovery runs the cut-off jobs again. Deal and workflow jobs only read the warehouse, so the
 * effect that must happen once is the job's completion: its result (a workflow's report) written once, one
 * `completed` event per job. Job-log rows are counted too: a job re-run after its replica died may log twice,
 * which is the at-least-once delivery underneath, not a doubled effect.
 */
const SOURCES = ['hubspot', 'gong', 'slack', 'linear'];

let warehouse: LocalWarehouse;
beforeAll(async () => {
  // A round trip long enough that a batch is in flight most of the time.
  warehouse = await startTestWarehouse({ queryLatencyMs: 300, deals: 2_000 });
});
/** Every replica a test starts; killed after each test, also one that timed out (its own finally never ran). */
const replicas: Replica[] = [];
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.kill('SIGKILL');
});
afterAll(() => warehouse.close());

/**
 * Kills the current replica once `ready` says it is mid-batch, `kills` times, each time starting the next one.
 * `ready(kill, completedSinceStart)` is asked only after the replica has completed `progress` jobs of its own
 * (the killed replica's jobs stay "active" until the next one's stall check moves them, so active > 0 alone
 * would let a fresh replica be killed before it did anything).
 */
async function killMidBatch(opts: {
  kills: number;
  progress: number;
  spawn: () => Replica;
  completed: () => Promise<number>;
  ready: (kill: number, sinceMs: number) => Promise<boolean>;
}): Promise<Replica> {
  let current = opts.spawn();
  for (let k = 0; k < opts.kills; k++) {
    const base = await opts.completed();
    const since = Date.now();
    await waitUntil(`replica ${k + 1} to be mid-batch`, async () => (await opts.completed()) >= base + opts.progress && opts.ready(k, Date.now() - since), {
      timeoutMs: 30_000,
      everyMs: 10,
    });
    await current.kill('SIGKILL');
    current = opts.spawn();
  }
  return current;
}

const reRunCount = (jobs: Job[]) => jobs.filter((j) => j.stalledCounter > 0 || j.attemptsStarted > 1).length;

describe('fault: SIGKILL a deals replica mid-batch, twice', () => {
  it('every deal-batch job completes with its full answer, once', async () => {
    const JOBS = 400;
    const KILLS = 2;
    const prefix = uniquePrefix('fault-deals-kill');
    const env = faultReplicaEnv(prefix, warehouse.url, {
      REDIS_URL: testRedisUrl(),
      // Every id to the warehouse (no cache), so each job waits on a batch call.
      CACHE_ENABLED: 'false',
      DEALS_WORKER_CONCURRENCY: '50',
      DEALS_BATCH_MAX_WAIT_MS: '20',
      WORKER_MAX_STALLED_COUNT: '10',
    });
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const queue = producer.queue('deals');
    try {
      // 20 known ids and one unknown per job: the answer must be complete (20 found, 1 "not found") after a re-run.
      const idsOf = (j: number) => [...Array.from({ length: 20 }, (_, i) => `D-${((j * 20 + i) % 2_000) + 1}`), `D-9${String(j).padStart(5, '0')}`];
      const handles: JobHandle<DealInsightsResult>[] = await Promise.all(Array.from({ length: JOBS }, (_, j) => producer.dealInsights(idsOf(j))));
      const expected = new Map(handles.map((h, j) => [h.id, idsOf(j)]));

      const activeAtKill: number[] = [];
      await killMidBatch({
        kills: KILLS,
        progress: 60,
        spawn: () => {
          const r = startReplica(env, 'deals');
          replicas.push(r);
          return r;
        },
        completed: async () => (await queue.getJobCounts('completed')).completed,
        ready: async () => {
          const { active } = await queue.getJobCounts('active');
          if (active === 0) return false;
          activeAtKill.push(active);
          return true;
        },
      });
      await waitUntil(
        'every deal-batch job to finish',
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= JOBS;
        },
        { timeoutMs: 45_000, everyMs: 100 },
      );

      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      const jobs = await queue.getJobs(['completed'], 0, JOBS);
      const completions = await countCompletedEvents(redis, prefix, 'deals');
      const logRows = await countLogRows(
        redis,
        prefix,
        'deals',
        handles.map((h) => h.id),
        /^served by /,
      );
      const wrongAnswers = jobs.filter((j) => {
        const r = j.returnvalue as DealInsightsResult;
        const ids = expected.get(j.id!)!;
        return (
          r.requested !== ids.length || r.found !== ids.length - 1 || r.deals.map((d) => d.id).join() !== ids.join() || r.deals[ids.length - 1].found !== false
        );
      }).length;
      const reRun = reRunCount(jobs);
      reportFault({
        fault: `deals replica SIGKILL mid-batch x${KILLS}`,
        accepted: JOBS,
        completed: counts.completed,
        failed: counts.failed,
        duplicatedEffects: moreThanOnce(completions),
        detail: `${reRun} jobs ran again after a kill; active at each kill: ${activeAtKill.join(',')}; wrong answers ${wrongAnswers}; jobs that logged "served by" more than once: ${moreThanOnce(logRows)}`,
      });

      expect(counts).toEqual({ completed: JOBS, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect(wrongAnswers).toBe(0);
      // The kills made jobs run again; each still completed once.
      expect(reRun).toBeGreaterThan(0);
      expect({ jobs: completions.size, twice: moreThanOnce(completions) }).toEqual({ jobs: JOBS, twice: 0 });
      expect([...completions.keys()].every((id) => expected.has(id))).toBe(true);
      expect([...logRows.values()].every((n) => n >= 1)).toBe(true);
    } finally {
      for (const r of replicas.splice(0)) await r.kill('SIGKILL');
      await producer.close();
      await redis.quit();
    }
  }, 90_000);
});

describe('fault: SIGKILL a flows replica mid-flow, twice, while workflows keep starting', () => {
  it('every workflow completes once with a full report written once; every step completes once', async () => {
    const WORKFLOWS = 60;
    const KILLS = 2;
    const QUESTIONS = [
      'Which enterprise deals are at risk this quarter, and why?',
      'Which deals are at risk?',
      'Which mid-market deals over $50k stalled this month?',
    ];
    const prefix = uniquePrefix('fault-flows-kill');
    const env = faultReplicaEnv(prefix, warehouse.url, { REDIS_URL: testRedisUrl(), FLOW_BATCH_MAX_WAIT_MS: '20', WORKER_MAX_STALLED_COUNT: '10' });
    const redis = testRedis();
    const producer = createProducer({ connection: redis, prefix });
    const queues = { workflows: producer.queue('workflows'), analyze: producer.queue('analyze'), collect: producer.queue('collect') };
    const activeByQueue = async () => {
      const [w, a, c] = await Promise.all([queues.workflows, queues.analyze, queues.collect].map((q) => q.getJobCounts('active')));
      return { workflows: w.active, analyze: a.active, collect: c.active };
    };
    const atKill: string[] = [];
    try {
      const handles: JobHandle<WorkflowReport>[] = [];
      const starting = (async () => {
        for (let i = 0; i < WORKFLOWS; i++) {
          handles.push(await producer.workflow(QUESTIONS[i % QUESTIONS.length], { asOf: '2026-11-25T00:00:00Z', idempotencyKey: `${prefix}-wf-${i}` }));
          await sleep(100); // the scenario: workflows keep starting, so every kill lands with flows at every stage
        }
      })();
      const activeAtKill: number[] = [];
      await killMidBatch({
        kills: KILLS,
        progress: 4,
        spawn: () => {
          const r = startReplica(env, 'flows');
          replicas.push(r);
          return r;
        },
        completed: async () => (await queues.workflows.getJobCounts('completed')).completed,
        // Mid-flow; preferably while a synthesis (the report) is in flight, which lasts milliseconds, so only
        // for the first 3 s of each wait.
        ready: async (_kill, sinceMs) => {
          const a = await activeByQueue();
          const active = a.collect + a.analyze + a.workflows;
          if (active === 0 || (a.workflows === 0 && sinceMs < 3_000)) return false;
          activeAtKill.push(active);
          atKill.push(`collect ${a.collect}/analyze ${a.analyze}/synthesize ${a.workflows}`);
          return true;
        },
      });
      await starting;
      await waitUntil(
        'every workflow to finish',
        async () => {
          const c = await queues.workflows.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= WORKFLOWS;
        },
        { timeoutMs: 45_000, everyMs: 100 },
      );

      const ids = handles.map((h) => h.id);
      const counts = {
        workflows: await queues.workflows.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children'),
        analyze: await queues.analyze.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children'),
        collect: await queues.collect.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed'),
      };
      const roots = await Promise.all(ids.map((id) => queues.workflows.getJob(id)));
      const partial = roots.filter((j) => {
        const r = j?.returnvalue as WorkflowReport | undefined;
        return !r || r.sourcesUsed.join() !== SOURCES.join() || r.sourcesMissing.length > 0 || !r.markdown.startsWith('# Which');
      }).length;
      const completions = {
        workflows: await countCompletedEvents(redis, prefix, 'workflows'),
        analyze: await countCompletedEvents(redis, prefix, 'analyze'),
        collect: await countCompletedEvents(redis, prefix, 'collect'),
      };
      const twice = moreThanOnce(completions.workflows) + moreThanOnce(completions.analyze) + moreThanOnce(completions.collect);
      const reportRows = await countLogRows(redis, prefix, 'workflows', ids, /^report from /);
      const steps = [
        ...(await queues.workflows.getJobs(['completed'], 0, WORKFLOWS)),
        ...(await queues.analyze.getJobs(['completed'], 0, 2 * WORKFLOWS)),
        ...(await queues.collect.getJobs(['completed'], 0, 4 * WORKFLOWS)),
      ];
      const reRun = reRunCount(steps);
      reportFault({
        fault: `flows replica SIGKILL mid-flow x${KILLS}`,
        accepted: WORKFLOWS,
        completed: counts.workflows.completed,
        failed: counts.workflows.failed + counts.analyze.failed + counts.collect.failed,
        duplicatedEffects: twice,
        detail:
          `${WORKFLOWS * 7} steps; ${reRun} steps ran again after a kill; active at each kill: ${atKill.join(', ')}; partial reports ${partial}; ` +
          `workflows whose synthesis logged its report more than once: ${moreThanOnce(reportRows)}`,
      });

      expect(counts).toEqual({
        workflows: { completed: WORKFLOWS, failed: 0, active: 0, waiting: 0, delayed: 0, 'waiting-children': 0 },
        analyze: { completed: 2 * WORKFLOWS, failed: 0, active: 0, waiting: 0, delayed: 0, 'waiting-children': 0 },
        collect: { completed: 4 * WORKFLOWS, failed: 0, active: 0, waiting: 0, delayed: 0 },
      });
      // No step lost to a kill turned into a gap in the report.
      expect(partial).toBe(0);
      expect(reRun).toBeGreaterThan(0);
      // Each workflow's report written once (its completion carries it), each step completed once.
      expect({ workflows: completions.workflows.size, analyze: completions.analyze.size, collect: completions.collect.size, twice }).toEqual({
        workflows: WORKFLOWS,
        analyze: 2 * WORKFLOWS,
        collect: 4 * WORKFLOWS,
        twice: 0,
      });
      expect(ids.every((id) => completions.workflows.get(id) === 1)).toBe(true);
      expect([...reportRows.values()].every((n) => n >= 1)).toBe(true);
    } finally {
      for (const r of replicas.splice(0)) await r.kill('SIGKILL');
      await producer.close();
      await redis.quit();
    }
  }, 90_000);
});
