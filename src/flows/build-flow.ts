import { randomUUID } from 'node:crypto';
import type { FlowJob, JobsOptions } from 'bullmq';
import { JOB_NAMES, QUEUES } from '../contracts/queues';
import { type Source, WORKFLOW_TYPES, type WorkflowJobData } from '../contracts/workflows';

export interface BuildFlowOptions {
  /** Root job id; default `wf-<uuid>`. */
  workflowId?: string;
  /** Applied to every job of the tree (attempts, backoff, retention). */
  jobOptions?: JobsOptions;
}

/** `wf-…-collect-gong`: the job id of one step of a workflow. */
function childJobId(workflowId: string, step: string): string {
  return `${workflowId}-${step}`;
}

const STEP_SOURCES: Record<string, Source> = {
  'collect-hubspot': 'hubspot',
  'analyze-deals': 'hubspot',
  'collect-gong': 'gong',
  'analyze-calls': 'gong',
  'collect-slack': 'slack',
  'collect-linear': 'linear',
};

/** The source a child job key (`prefix:queue:wf-…-collect-gong`) belongs to, if it is a workflow step. */
export function sourceOfJobKey(key: string): Source | undefined {
  const m = /-(collect-\w+|analyze-\w+)$/.exec(key);
  return m ? STEP_SOURCES[m[1]] : undefined;
}

/** The sources a workflow must have; a failure of any other source leaves a marked gap in the report. */
function requiredSources(data: WorkflowJobData): Source[] {
  return data.requiredSources ?? [...WORKFLOW_TYPES[data.type].required];
}

/**
 * The FlowProducer tree of one workflow:
 *
 *   synthesize ← analyze-deals ← collect-hubspot
 *              ← analyze-calls ← collect-gong
 *              ← collect-slack
 *              ← collect-linear
 *
 * Collectors run in parallel; each analyser starts as soon as its own collector finishes. A child of a
 * required source fails its parent (`failParentOnFailure`); any other child that fails after its retries
 * is ignored (`ignoreDependencyOnFailure`) and synthesis runs with what arrived, marking the gap.
 */
export function buildWorkflowFlow(data: WorkflowJobData, opts: BuildFlowOptions = {}): FlowJob {
  const required = new Set(requiredSources(data));
  const asOf = data.asOf ?? new Date().toISOString();
  const childData = { question: data.question, type: data.type, asOf, trace: data.trace, ...(data.tenant ? { tenant: data.tenant } : {}) };
  const policy = (source: Source): JobsOptions => (required.has(source) ? { failParentOnFailure: true } : { ignoreDependencyOnFailure: true });
  const workflowId = opts.workflowId ?? `wf-${randomUUID()}`;
  // Deterministic child ids: a child's key names its workflow and step, so a failure tells its source.
  const job = (queueName: string, name: string, source: Source, children?: FlowJob[]): FlowJob => ({
    name,
    queueName,
    data: { ...childData, source },
    opts: { ...opts.jobOptions, ...policy(source), jobId: childJobId(workflowId, name) },
    ...(children ? { children } : {}),
  });
  return {
    name: JOB_NAMES.synthesize,
    queueName: QUEUES.workflows,
    data: { ...data, asOf },
    opts: { ...opts.jobOptions, jobId: workflowId },
    children: [
      job(QUEUES.analyze, JOB_NAMES.analyzeDeals, 'hubspot', [job(QUEUES.collect, JOB_NAMES.collectHubspot, 'hubspot')]),
      job(QUEUES.analyze, JOB_NAMES.analyzeCalls, 'gong', [job(QUEUES.collect, JOB_NAMES.collectGong, 'gong')]),
      job(QUEUES.collect, JOB_NAMES.collectSlack, 'slack'),
      job(QUEUES.collect, JOB_NAMES.collectLinear, 'linear'),
    ],
  };
}
