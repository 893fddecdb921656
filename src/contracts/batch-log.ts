import type { BatchRef } from './embedding';

/** What a batch's size counts in a job log row: texts (embeddings), ids (deals), requests (collectors). */
export type BatchUnit = 'texts' | 'ids' | 'requests';

/**
 * The job log row naming the warehouse batches that served a job (Bull Board's Logs tab), written by the
 * workers and read back by `batchesInLogs` (the API's job lookup): one format, both directions here.
 *
 * @example
 *   describeBatches([{ batchId: 'emb-7f3a-1', size: 200 }], 'texts') // 'batch emb-7f3a-1 (200 texts)'
 */
export function describeBatches(refs: readonly BatchRef[], unit: BatchUnit): string {
  if (refs.length === 0) return 'no warehouse batch';
  return `batch${refs.length > 1 ? 'es' : ''} ${refs.map((b) => `${b.batchId} (${b.size} ${unit})`).join(', ')}`;
}

const BATCH_IN_LOG = /([A-Za-z0-9_-]+-[A-Za-z0-9_-]+) \((\d+) (?:texts|ids|requests)\)/g;

/** The batches named in a job's log rows (`describeBatches`' format), in order. */
export function batchesInLogs(lines: readonly string[]): BatchRef[] {
  const out: BatchRef[] = [];
  for (const line of lines) {
    for (const m of line.matchAll(BATCH_IN_LOG)) out.push({ batchId: m[1], size: Number(m[2]) });
  }
  return out;
}
