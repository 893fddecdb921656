export { createProducer, idempotentJobId, type EmbedOptions, type EnqueueOptions, type JobHandle, type Producer, type ProducerOptions, type SearchRequestInput } from './producer';
