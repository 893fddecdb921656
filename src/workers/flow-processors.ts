import { type Job, UnrecoverableError } from 'bullmq';
import { describeBatches } from '../contracts/batch-log';
import { QUEUES } from '../contracts/queues';
import type { CollectorResult, DealWithFigures, Source, SourceItem, WorkflowReport } from '../contracts/workflows';
import { WORKFLOW_TYPES, WorkflowJobData } from '../contracts/workflows';
import { analyzeCalls, analyzeDeals } from '../flows/analyze';
import { sourceOfJobKey } from '../flows/build-flow';
import { type CollectFilters, filterKey, filtersFor } from '../flows/question';
import { type ChildValue, synthesizeReport } from '../flows/report';
import { activeFleetMetrics } from '../telemetry/active-metrics';
import type { FleetMetrics } from '../telemetry/metrics';
import { analyzeTexts, type TextAnalysis } from '../warehouse/queries/analyze-texts';
import { collectSource } from '../warehouse/queries/collect-source';
import type { Row, Warehouse } from '../warehouse/types';
import { type BatchEvent, batchTag, Coalescer } from './coalescer';
import { dealFigures, toDeal } from './deal-figures';
import { type BatchingOptions, parseJobData } from './job-data';
import { type JobLogWriter, logFailedBatches, perJobLogs } from './job-logs';

export interface FlowProcessorDeps {
  warehouse: Warehouse;
  batching?: BatchingOptions;
  onBatch?: (event: BatchEvent) => void;
  /**
   * Where collectors' "collected … in batch …" and synthesis's "report from …" rows go, and "failed in batch …"
   * for a collector or analyser its batch call failed. Default `job.log` (one call per job); the flows role
   * passes `createJobLogWriter`, so the collectors a batch serves, which finish together, log in one script call.
   */
  logs?: JobLogWriter;
  /** Records each workflow's duration, enqueue to report (`fleet_workflow_duration_ms`). Default: the process's telemetry, if started. */
  metrics?: Pick<FleetMetrics, 'workflow'>;
}

/** Processors of the three workflow queues: `collect`, `analyze` and `workflows` (synthesis). */
export interface FlowProcessors {
  collect(job: Job): Promise<CollectorResult>;
  analyze(job: Job): Promise<ChildValue>;
  synthesize(job: Job): Promise<WorkflowReport>;
  close(): Promise<void>;
}

type StepData = { question: string; type: string; asOf: string; source: Source };

const TEXT_LIMIT = 600;
const clip = (v: unknown) => (v === null || v === undefined ? '' : String(v).slice(0, TEXT_LIMIT));
const when = (v: unknown) => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : String(v));

function toItems(source: Source, rows: Row[]): SourceItem[] {
  return rows.map((r) => {
    switch (source) {
      case 'hubspot':
        return { id: String(r.ID), title: clip(r.NAME), text: clip(r.NOTES), dealId: String(r.ID), at: when(r.CLOSE_DATE) };
      case 'gong':
        return {
          id: String(r.ID),
          title: clip(r.TITLE),
          text: clip(r.TRANSCRIPT),
          dealId: r.DEAL_ID == null ? null : String(r.DEAL_ID),
          at: when(r.STARTED_AT),
        };
      case 'slack':
        return {
          id: String(r.ID),
          title: `#${clip(r.CHANNEL)} · ${clip(r.AUTHOR)}`,
          text: clip(r.TEXT),
          dealId: r.DEAL_ID == null ? null : String(r.DEAL_ID),
          at: when(r.TS),
        };
      case 'linear':
        return {
          id: String(r.ID),
          title: `${clip(r.TITLE)} [${clip(r.STATE)}]`,
          text: clip(r.DESCRIPTION),
          dealId: r.DEAL_ID == null ? null : String(r.DEAL_ID),
          at: when(r.UPDATED_AT),
        };
      default:
        throw new TypeError(`unknown source ${JSON.stringify(source)}`);
    }
  });
}

/** The workflow type a synthesis job names (label `workflow`), even when its data fails validation. */
function workflowType(job: Job): string {
  const type = (job.data as { type?: unknown } | null)?.type;
  return typeof type === 'string' && Object.hasOwn(WORKFLOW_TYPES, type) ? type : 'unknown';
}

function stepData(job: Job): StepData {
  const d = job.data as Partial<StepData>;
  if (typeof d?.question !== 'string' || typeof d.asOf !== 'string' || typeof d.source !== 'string') {
    throw new Error(`job ${job.name} ${job.id} has no question/asOf/source`);
  }
  return d as StepData;
}

/**
 * Collectors coalesce ACROSS workflows: one coalescer per source keyed by the request's filters, so 200
 * workflows asking the same question make one query per source, and different questions arriving
 * together share one statement (a bound VALUES list of requests, see `collectSource`). Analysers
 * coalesce per row id the same way.
 */
export function createFlowProcessors(deps: FlowProcessorDeps): FlowProcessors {
  const batching = { maxBatchSize: 200, maxWaitMs: 20, maxConcurrentBatches: 8, ...deps.batching };
  const logs = deps.logs ?? perJobLogs;
  const metrics = deps.metrics ?? activeFleetMetrics();
  const collectors = new Map<Source, Coalescer<CollectFilters, Row[]>>();
  for (const source of ['hubspot', 'gong', 'slack', 'linear'] as const) {
    collectors.set(
      source,
      new Coalescer<CollectFilters, Row[]>({
        name: `collect-${source}`,
        ...batching,
        keyOf: (f) => filterKey(source, f),
        loadBatch: (requests, batch, call) =>
          collectSource(deps.warehouse, source, requests, Math.max(...requests.map((r) => r.limit)), {
            tag: batchTag(QUEUES.collect, batch),
            onQueryId: call.onQueryId,
          }),
        onBatch: deps.onBatch,
      }),
    );
  }
  const analysers = {
    deals: new Coalescer<string, TextAnalysis | null>({
      name: 'analyze-deals',
      ...batching,
      maxBatchSize: 1000,
      loadBatch: async (ids, batch, call) => {
        const m = await analyzeTexts(deps.warehouse, 'deals', ids, { tag: batchTag(QUEUES.analyze, batch), onQueryId: call.onQueryId });
        return ids.map((id) => m.get(id) ?? null);
      },
      onBatch: deps.onBatch,
    }),
    calls: new Coalescer<string, TextAnalysis | null>({
      name: 'analyze-calls',
      ...batching,
      maxBatchSize: 1000,
      loadBatch: async (ids, batch, call) => {
        const m = await analyzeTexts(deps.warehouse, 'calls', ids, { tag: batchTag(QUEUES.analyze, batch), onQueryId: call.onQueryId });
        return ids.map((id) => m.get(id) ?? null);
      },
      onBatch: deps.onBatch,
    }),
  };

  /** Combines what the children handed up into the workflow's report. */
  async function synthesize(job: Job): Promise<WorkflowReport> {
    const data = parseJobData<WorkflowJobData>(WorkflowJobData, job);
    const values = Object.values(await job.getChildrenValues()) as ChildValue[];
    const failures = Object.entries(await job.getIgnoredChildrenFailures()).map(([key, reason]) => ({
      source: sourceOfJobKey(key) ?? ('hubspot' as Source),
      reason: String(reason),
    }));
    const report = synthesizeReport({ ...data, asOf: data.asOf ?? new Date().toISOString() }, values, failures);
    await logs.log(
      job,
      `report from ${report.sourcesUsed.join(', ') || 'no sources'}${report.sourcesMissing.length ? `; missing ${report.sourcesMissing.map((m) => m.source).join(', ')}` : ''}`,
    );
    return report;
  }

  /** Names the analyser batch that failed a job in its log (analysers serve ids), then fails the job with its error. */
  const failedIn =
    (job: Job) =>
    async (err: unknown): Promise<never> => {
      await logFailedBatches(logs, job, [err], 'ids');
      throw err;
    };

  /** The collector result a child handed up, or why it is missing (failed and ignored). */
  async function childCollected(job: Job, source: Source): Promise<{ collected?: CollectorResult; missing?: string }> {
    const values = Object.values(await job.getChildrenValues()) as CollectorResult[];
    const collected = values.find((v) => v?.source === source);
    if (collected) return { collected };
    const failures = await job.getIgnoredChildrenFailures();
    const reason = Object.entries(failures).find(([key]) => sourceOfJobKey(key) === source)?.[1];
    return { missing: reason ? `collector failed: ${reason}` : 'collector returned nothing' };
  }

  return {
    async collect(job) {
      const { question, asOf, source } = stepData(job);
      const filters = filtersFor(question, new Date(asOf));
      const { value: rows, batch } = await collectors
        .get(source)!
        .load(filters)
        .catch(async (err: unknown) => {
          await logFailedBatches(logs, job, [err], 'requests');
          throw err;
        });
      const result: CollectorResult = {
        source,
        items: toItems(source, rows),
        retrieval: `filters: pattern ${filters.pattern}, amount >= ${filters.minAmount}, ${filters.from}..${filters.to}, top ${filters.limit}`,
        batchId: batch.batchId,
      };
      if (source === 'hubspot') result.deals = rows.map((r) => toDeal(r as never));
      await logs.log(job, `collected ${rows.length} ${source} rows in ${describeBatches([batch], 'requests')}`);
      return result;
    },

    async analyze(job) {
      const { asOf, source } = stepData(job);
      const { collected, missing } = await childCollected(job, source);
      const at = Date.parse(asOf);
      if (source === 'hubspot') {
        if (!collected) return { ...analyzeDeals([]), source, missing };
        const deals = collected.deals ?? [];
        const sentiments = await Promise.all(deals.map((d) => analysers.deals.load(d.id))).catch(failedIn(job));
        const input: DealWithFigures[] = deals.map((deal, i) => ({
          deal,
          figures: dealFigures(deal, at),
          notesSentiment: sentiments[i].value?.sentiment ?? null,
        }));
        return { ...analyzeDeals(input), source };
      }
      if (!collected) return { ...analyzeCalls([], new Map()), source, missing };
      const loaded = await Promise.all(collected.items.map((c) => analysers.calls.load(c.id))).catch(failedIn(job));
      const analyses = new Map<string, TextAnalysis>();
      for (const [i, l] of loaded.entries()) if (l.value) analyses.set(collected.items[i].id, l.value);
      return { ...analyzeCalls(collected.items, analyses), source };
    },

    async synthesize(job) {
      try {
        const report = await synthesize(job);
        // The workflow job is the flow's root, added with its children: its timestamp is the workflow's start.
        metrics?.workflow(Date.now() - job.timestamp, true, report.type);
        return report;
      } catch (err) {
        // A failed attempt that BullMQ will retry is not yet a failed workflow.
        if (err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1))
          metrics?.workflow(Date.now() - job.timestamp, false, workflowType(job));
        throw err;
      }
    },

    async close() {
      await Promise.all([...collectors.values(), analysers.deals, analysers.calls].map((c) => c.close()));
    },
  };
}
