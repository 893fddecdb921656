import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { CacheUnavailableError, invalidateDeals } from '../../cache';
import { DealInvalidationRequest } from '../../contracts/deals';
import { QUEUES } from '../../contracts/queues';
import type { Producer } from '../../producers';
import { HttpError } from '../http-error';
import { errorResponses } from '../openapi';
import { openApiSchema, validateRequest } from '../schemas';
import type { V1Scope } from '../v1-scope';

export interface DealRoutesOptions {
  scope: V1Scope;
  /** The ioredis connection it enqueues on carries the invalidation too (the http layer builds no clients). */
  producer: Producer;
  /** Key prefix of the replicas' caches (`CACHE_KEY_PREFIX`). Default `fleet:cache`. */
  cachePrefix?: string;
  /** Deadline of the Redis round trip. */
  redisTimeoutMs: number;
}

const INVALIDATED_BODY = {
  type: 'object',
  required: ['dealIds', 'deleted', 'receivers'],
  properties: {
    dealIds: { type: 'array', items: { type: 'string' }, description: 'The ids, as sent' },
    deleted: { type: 'integer', description: 'Redis (L2) entries removed; an id nobody had cached is not an error' },
    receivers: {
      type: 'integer',
      description: 'Deal caches (one per replica process) that received the invalidation; each drops the ids from its in-process L1',
    },
  },
};

/**
 * The producer's ioredis connection, as the API role hands it over. Looked up per request: opening the
 * queue at registration would talk to Redis even in an API nobody asks this.
 */
function redisOf(producer: Producer): Redis {
  const connection = producer.queue(QUEUES.deals).opts.connection as Partial<Redis> | undefined;
  if (typeof connection?.pipeline !== 'function' || typeof connection.publish !== 'function') {
    throw new Error('POST /v1/deals/invalidate needs the producer to be created on an ioredis connection (as the API role does)');
  }
  return connection as Redis;
}

/**
 * `POST /v1/deals/invalidate`: after a CRM update, drops the deals' cached rows on every replica (their
 * Redis entries and, through the invalidation channel, every replica's in-process copy), in one Redis
 * round trip; the next job reads them from the warehouse.
 */
export async function dealRoutes(v1: FastifyInstance, opts: DealRoutesOptions): Promise<void> {
  const { scope, producer, redisTimeoutMs } = opts;
  v1.post(
    '/v1/deals/invalidate',
    {
      schema: {
        tags: ['deals'],
        summary: 'Drop cached deal rows on every replica (after a CRM update)',
        security: [{ bearerAuth: [] }],
        body: openApiSchema(DealInvalidationRequest),
        response: { 200: { description: 'Invalidated', ...INVALIDATED_BODY }, ...errorResponses(400, 401, 413, 415, 503) },
      },
    },
    (req) =>
      scope.inSpan(req, async () => {
        const { dealIds } = validateRequest(DealInvalidationRequest, req.body, 'body');
        try {
          return await invalidateDeals(redisOf(producer), dealIds, { prefix: opts.cachePrefix, timeoutMs: redisTimeoutMs });
        } catch (err) {
          if (err instanceof CacheUnavailableError) {
            throw new HttpError(503, 'cache_unavailable', `the deals were not invalidated (${err.message}); retry`, undefined, { 'Retry-After': '1' });
          }
          throw err;
        }
      }),
  );
}
