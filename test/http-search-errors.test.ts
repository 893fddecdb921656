import { Writable } from 'node:stream';
import { encodeVector } from '../src/contracts/vector-codec';
import { createLogger } from '../src/telemetry';
import type { EmbeddingService } from '../src/workers/embedding-processor';
import { createSearchProcessor } from '../src/workers/search-processor';
import { type ProductionApi, startProductionApi } from './helpers/api';
import { uniquePrefix } from './helpers/redis';

const TOKEN = 'search-errors-token-0123456789';

/**
 * POST /v1/search wired as production wires it (startApiRole over the search processor): only what the
 * caller got wrong is a 4xx. An index that disagrees with the contract (here: 384 dimensions where the
 * contract says 768) is the operator's problem: a 500 with a request id, and an error log line.
 */
describe('POST /v1/search: errors the caller did not cause are 5xx', () => {
  it('a misconfigured index answers 500 (logged), a bad request still 400', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'error',
      destination: new Writable({
        write: (c, _e, cb) => {
          lines.push(JSON.parse(String(c)));
          cb();
        },
      }),
    });
    // The index of a replica built with other settings: what src/index-builder's search service throws then.
    const index = {
      search: async (vector: Float32Array): Promise<never> => {
        throw new RangeError(`query vector has ${vector.length} components, the index has 384`);
      },
    };
    const search = createSearchProcessor({ index, embeddings: {} as EmbeddingService });
    let api: ProductionApi | undefined;
    try {
      api = await startProductionApi({ prefix: uniquePrefix('search-err'), token: TOKEN, search, logger });
      const post = (payload: unknown) => api!.call('POST', '/v1/search', payload);

      const misconfigured = await post({ vector: encodeVector(new Float32Array(768).fill(0.036)), k: 5 });
      expect(misconfigured.status).toBe(500);
      expect(((await misconfigured.json()) as { error: { code: string } }).error.code).toBe('internal_error');
      expect(lines).toEqual([expect.objectContaining({ msg: 'request failed', route: '/v1/search' })]);

      const bad = await post({ k: 5 });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    } finally {
      await api?.close();
    }
  });
});
