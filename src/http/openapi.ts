import type { FastifyInstance } from 'fastify';
import { nativeRequire } from '../runtime/native-require';

/** The OpenAPI document at `/docs/json` (and `/docs/yaml`), a readable page at `/docs`. Register before the routes. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  // Loaded like fastify itself (see src/runtime/native-require.ts).
  const swagger = nativeRequire<(typeof import('@fastify/swagger'))['default']>('@fastify/swagger');
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'warehouse-fleet API',
        version: '1',
        description:
          'Enqueue warehouse-bound AI work (embeddings, deal insights) and look jobs up. Jobs are processed by the fleet\'s workers, ' +
          'which coalesce many jobs into one batched warehouse call; a job\'s `batches` name the call that served it. ' +
          'Errors are `{ error: { code, message, issues? } }`; `issues[].path` names each bad field (`texts[3]`).',
      },
      tags: [
        { name: 'jobs', description: 'Enqueue and look up jobs' },
        { name: 'search', description: 'Vector search' },
        { name: 'workflows', description: 'Multi-source workflows' },
        { name: 'health', description: 'Probes and metrics (no authentication)' },
      ],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of the API tokens (FLEET_API_TOKENS)' } } },
    },
  });
  const swaggerUi = nativeRequire<(typeof import('@fastify/swagger-ui'))['default']>('@fastify/swagger-ui');
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } });
}
