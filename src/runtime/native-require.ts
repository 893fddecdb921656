import * as moduleApi from 'node:module';

type ModuleApi = typeof moduleApi;

/**
 * Node's own `require`, for packages jest 29's module system cannot load:
 * - fastify 5.12's `inject` (light-my-request → `cookie` 1.x) and @fastify/static 10 (→ `content-disposition`
 *   3, used by Bull Board and the docs page) require ES-module-only packages, which Node >= 20.19 loads
 *   through require(esm);
 * - the OTLP trace exporter loads `http` with a dynamic `import()`.
 * jest replaces `module.createRequire` with its own; `process.getBuiltinModule` (Node >= 20.16) reaches
 * the real `node:module`, so these load the same way in production and under jest. In a plain Node
 * process this is exactly `require`.
 */
export function nativeRequire<T = unknown>(id: string): T {
  const real = (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:module') as ModuleApi | undefined;
  return (real ?? moduleApi).createRequire(__filename)(id) as T;
}
