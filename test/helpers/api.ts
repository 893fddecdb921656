import IORedis from 'ioredis';
import { startApiRole } from '../../src/app/api-role';
import { Releasers } from '../../src/app/releasers';
import { loadConfig } from '../../src/config';
import { createLogger, startTelemetry } from '../../src/telemetry';
import type { Logger } from '../../src/telemetry/logger';
import { dependencyLog } from '../../src/telemetry/outage-log';
import type { SearchProcessor } from '../../src/workers/search-processor';
import { testRedisUrl } from './redis';

export interface ProductionApi {
  url: string;
  /** `fetch` on the API with the bearer token and a JSON body. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

/**
 * The HTTP API wired as `fleet api` / `fleet up` wire it (startApiRole over a config read from variables,
 * telemetry, releasers), on this worker's Redis and a free loopback port; with `search`, POST /v1/search is
 * answered in-process as when the search role is co-located.
 */
export async function startProductionApi(opts: {
  prefix: string;
  token: string;
  search?: SearchProcessor;
  logger?: Logger;
  /** More configuration variables, read as the production config reads the environment (e.g. `TENANT_POLICIES`). */
  env?: Record<string, string>;
}): Promise<ProductionApi> {
  const logger = opts.logger ?? createLogger({ level: 'silent' });
  const releasers = new Releasers();
  const telemetry = startTelemetry({ role: 'api', logger });
  releasers.add('telemetry', () => telemetry.shutdown());
  try {
    const config = loadConfig({
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: opts.prefix,
      FLEET_API_TOKENS: opts.token,
      PORT: '0',
      FLEET_API_HOST: '127.0.0.1',
      ...opts.env,
    });
    const { api } = await startApiRole({
      config,
      logger,
      releasers,
      redisLog: dependencyLog(logger, { name: 'redis', summaryEveryMs: config.logOutageSummaryMs }),
      telemetry,
      search: opts.search,
      redis: () => new IORedis(testRedisUrl(), { maxRetriesPerRequest: null }),
      readiness: async () => ({ redis: true }),
    });
    return {
      url: api.url,
      call: (method, path, body, headers = {}) =>
        fetch(`${api.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json', ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      close: () => releasers.releaseAll(logger),
    };
  } catch (err) {
    await releasers.releaseAll(logger);
    throw err;
  }
}
