export type { BufferLimits, CloseResult } from './outage-buffer';
export {
  createProducer,
  type EmbedOptions,
  type EnqueueOptions,
  idempotentJobId,
  type JobHandle,
  type JobOutcome,
  MAX_RESULT_TIMEOUT_MS,
  type Producer,
  type ProducerOptions,
  type ProducerStats,
  type SearchRequestInput,
  type WaitForResultsOptions,
} from './producer';
