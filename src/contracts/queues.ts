/** Queue names of the fleet. Producers and workers import them from here, never spell them. */
export const QUEUES = {
  embeddings: 'embeddings',
  deals: 'deals',
  /** Root jobs of workflows (`synthesize`). */
  workflows: 'workflows',
  /** Workflow collectors (`collect-hubspot`, `collect-gong`, `collect-slack`, `collect-linear`). */
  collect: 'collect',
  /** Workflow analysers (`analyze-deals`, `analyze-calls`). */
  analyze: 'analyze',
  /** Semantic search for callers that prefer jobs to HTTP. */
  search: 'search',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Job names within the queues (BullMQ lets one queue carry several). */
export const JOB_NAMES = {
  embed: 'embed',
  dealInsights: 'deal-insights',
  synthesize: 'synthesize',
  collectHubspot: 'collect-hubspot',
  collectGong: 'collect-gong',
  collectSlack: 'collect-slack',
  collectLinear: 'collect-linear',
  analyzeDeals: 'analyze-deals',
  analyzeCalls: 'analyze-calls',
  search: 'search',
} as const;

export function isQueueName(name: string): name is QueueName {
  return (Object.values(QUEUES) as string[]).includes(name);
}
