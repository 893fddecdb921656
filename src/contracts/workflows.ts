import { z } from 'zod';
import type { Deal, DealFigures } from './deals';
import { Tenant } from './tenants';
import { WarehouseText } from './text';

/** Sources a workflow collects from (all landed in warehouse tables). */
export const SOURCES = ['hubspot', 'gong', 'slack', 'linear'] as const;
export type Source = (typeof SOURCES)[number];

/** Workflow types and the sources each one cannot do without (a missing optional source is a marked gap). */
export const WORKFLOW_TYPES = {
  'deal-risk': { required: ['hubspot'] as Source[] },
  general: { required: [] as Source[] },
} as const;
export type WorkflowType = keyof typeof WORKFLOW_TYPES;

export const MAX_QUESTION_CHARS = 2_000;

/** Payload of the root `synthesize` job; children get the same question. */
export const WorkflowJobData = z.strictObject({
  question: WarehouseText.refine((q) => q.length <= MAX_QUESTION_CHARS, `must be at most ${MAX_QUESTION_CHARS} characters`),
  type: z
    .enum(Object.keys(WORKFLOW_TYPES) as [WorkflowType, ...WorkflowType[]], { error: `must be one of ${Object.keys(WORKFLOW_TYPES).join(', ')}` })
    .default('deal-risk'),
  /** Overrides the type's required sources. */
  requiredSources: z.array(z.enum(SOURCES)).max(SOURCES.length).optional(),
  /** The moment the question is about (ISO); default: when it was asked. Makes reports reproducible. */
  asOf: z.iso.datetime({ offset: true }).optional(),
  /** Who the workflow is for (absent: the shared default tenant); its children carry it too. */
  tenant: Tenant.optional(),
  trace: z.record(z.string(), z.string()).optional(),
});
export type WorkflowJobData = z.output<typeof WorkflowJobData>;
export type WorkflowJobInput = z.input<typeof WorkflowJobData>;

/** What a collector or analyser hands to its parent. */
export interface SourceItem {
  id: string;
  title: string;
  text: string;
  dealId?: string | null;
  at?: string | null;
  score?: number;
}

export interface CollectorResult {
  source: Source;
  items: SourceItem[];
  /** For `hubspot`: the deal rows themselves, for the deal analyser. */
  deals?: Deal[];
  /** How the items were found: the filters applied, or `semantic` when the index answered. */
  retrieval: string;
  batchId?: string;
}

/** A deal with its derived figures, as the deal analyser receives it. */
export interface DealWithFigures {
  deal: Deal;
  figures: DealFigures;
  /** Sentiment of the deal's notes in [-1, 1], from the warehouse. */
  notesSentiment: number | null;
}

export interface DealRisk {
  id: string;
  name: string;
  company: string | null;
  stage: string;
  amount: number | null;
  risk: number;
  reasons: string[];
  daysInStage: number | null;
  lastActivityAgeDays: number | null;
}

export interface DealAnalysis {
  kind: 'deals';
  deals: DealRisk[];
  atRisk: number;
  totalAmountAtRisk: number;
  medianDaysInStage: number | null;
}

export interface CallAnalysis {
  kind: 'calls';
  calls: { id: string; dealId: string | null; title: string; sentiment: number; summary: string }[];
  averageSentiment: number | null;
  negativeCalls: number;
  themes: { theme: string; count: number }[];
}

/** Result of a workflow: structured JSON plus a Markdown rendering. */
export interface WorkflowReport {
  question: string;
  type: WorkflowType;
  asOf: string;
  sourcesUsed: Source[];
  sourcesMissing: { source: Source; reason: string }[];
  deals?: DealAnalysis;
  calls?: CallAnalysis;
  slack?: SourceItem[];
  linear?: SourceItem[];
  markdown: string;
}
