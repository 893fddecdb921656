import type { FastifyInstance } from 'fastify';
import { SearchRequest } from '../../contracts/search';
import { errorResponses, SEARCH_BODY } from '../openapi';
import { openApiSchema } from '../schemas';
import type { HandlerContext, V1Scope } from '../v1-scope';

/**
 * Answers `POST /v1/search`: validates its own body (throw the contracts' ValidationError for a 400 naming
 * the field, or an HttpError) and returns the JSON answer (200). The host decides where searches run: in
 * this process (a co-located search role) or on the search replicas through the `search` queue.
 */
export type SearchHandler = (body: unknown, ctx: HandlerContext) => Promise<unknown>;

/** `POST /v1/search` over the host's handler. */
export async function searchRoutes(v1: FastifyInstance, opts: { scope: V1Scope; search: SearchHandler }): Promise<void> {
  const { scope, search } = opts;
  v1.post(
    '/v1/search',
    {
      schema: {
        tags: ['search'],
        summary: 'Nearest neighbours of a text or vector in the search index',
        security: [{ bearerAuth: [] }],
        body: openApiSchema(SearchRequest, { omit: ['trace'] }),
        response: { 200: { description: 'Search results', ...SEARCH_BODY }, ...errorResponses(400, 401, 413, 415, 500, 503) },
      },
    },
    (req) => scope.inSpan(req, () => search(req.body, scope.context(req))),
  );
}
