/** The fleet's HTTP surface: enqueue API, job lookup, Bull Board, health, metrics, OpenAPI. */
export {
  buildApi,
  DEFAULT_BODY_LIMIT_BYTES,
  startApi,
  type ApiBoardOptions,
  type ApiOptions,
  type RunningApi,
  type StartApiOptions,
} from './api';
export { errorReply, type ErrorReply } from './error-replies';
export type { SearchHandler } from './routes/search';
export type { HandlerContext } from './v1-scope';
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
export { DealInsightsRequest, EmbeddingsRequest, MAX_TEXTS_PER_REQUEST, WorkflowRequest } from './schemas';
