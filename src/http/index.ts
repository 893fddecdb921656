/** The fleet's HTTP surface: enqueue API, job lookup, Bull Board, health, metrics, OpenAPI. */
export {
  buildApi,
  DEFAULT_BODY_LIMIT_BYTES,
  startApi,
  type ApiBoardOptions,
  type ApiOptions,
  type HandlerContext,
  type RunningApi,
  type SearchHandler,
  type StartApiOptions,
  type WorkflowHandlers,
} from './api';
export { createAuthenticator, MIN_PASSWORD_CHARS, MIN_TOKEN_CHARS, type Authenticator, type AuthOptions, type Credentials, type Principal } from './auth';
export { BacklogGuard, DEFAULT_MAX_BACKLOG, type BacklogOptions, type BacklogSource } from './backlog';
export { mountBoard, type BoardOptions, type MountBoardOptions } from './board';
export {
  readinessChecks,
  redisPing,
  registerHealthRoutes,
  startHealthServer,
  type HealthRoutesOptions,
  type HealthServerOptions,
  type ReadinessCheck,
  type RedisPingable,
  type RunningServer,
} from './health';
export { HttpError, type HttpIssue } from './http-error';
export { DealInsightsRequest, EmbeddingsRequest, MAX_TEXTS_PER_REQUEST } from './schemas';
