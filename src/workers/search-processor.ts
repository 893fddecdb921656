import type { Job } from 'bullmq';
import { DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS, type EmbeddingModel } from '../contracts/embedding';
import { ValidationError } from '../contracts/errors';
import { type SearchFilter, SearchRequest, type SearchResponse } from '../contracts/search';
import { validate } from '../contracts/validate';
import { decodeVector } from '../contracts/vector-codec';
import type { EmbeddingService } from './embedding-processor';
import { parseJobData } from './job-data';

/** What the search role needs from the index: the search service of `src/index-builder`. */
export interface VectorSearcher {
  search(
    vector: Float32Array,
    k: number,
    namespace?: string,
    filter?: SearchFilter,
  ): Promise<{ hits: { id: string; namespace: string; score: number }[]; snapshotVersion: number; matching?: number }>;
}

export interface SearchProcessor {
  /** Validated request in, hits out; the HTTP route and the `search` queue both call it. */
  run(input: unknown): Promise<SearchResponse>;
  process(job: Job): Promise<SearchResponse>;
}

/**
 * Semantic search, optionally filtered by tenant, deal and time (`filter`): a text goes through the embedding path (cache first, then a coalesced warehouse
 * batch), a vector is used as given; the index answers with ids, scores and its snapshot version.
 */
export function createSearchProcessor(deps: { index: VectorSearcher; embeddings: EmbeddingService }): SearchProcessor {
  const answer = async (req: SearchRequest): Promise<SearchResponse> => {
    let vector: Float32Array;
    let embedding: SearchResponse['embedding'];
    if (req.text !== undefined) {
      const model = (req.model ?? DEFAULT_EMBEDDING_MODEL) as EmbeddingModel;
      if (!(EMBEDDING_MODELS as readonly string[]).includes(model))
        throw new ValidationError([{ path: 'model', message: `must be one of ${EMBEDDING_MODELS.join(', ')}` }]);
      const loaded = await deps.embeddings.embed(model, req.text);
      vector = loaded.value;
      embedding = { tier: loaded.tier };
    } else {
      vector = typeof req.vector === 'string' ? decodeVector(req.vector) : Float32Array.from(req.vector!);
    }
    const { hits, snapshotVersion, matching } = req.filter
      ? await deps.index.search(vector, req.k, req.namespace, req.filter)
      : await deps.index.search(vector, req.k, req.namespace);
    return {
      hits: hits.map((h) => ({ id: h.id, namespace: h.namespace, score: Number(h.score.toFixed(6)) })),
      snapshotVersion,
      ...(matching !== undefined ? { matching } : {}),
      ...(embedding ? { embedding } : {}),
    };
  };
  return {
    run: async (input) => answer(validate(SearchRequest, input)),
    process: async (job) => answer(parseJobData<SearchRequest>(SearchRequest, job)),
  };
}
