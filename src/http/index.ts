/** The fleet's HTTP surface: enqueue API, job lookup, Bull Board, health, metrics, OpenAPI. */
export {
  type ApiOptions,
  buildApi,
  type RunningApi,
  startApi,
} from './api';
export { createAuthenticator } from './auth';

export {
  type ReadinessCheck,
  readinessChecks,
  redisPing,
  startHealthServer,
} from './health';
export { HttpError } from './http-error';
export type { SearchHandler } from './routes/search';
