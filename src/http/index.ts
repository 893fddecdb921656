/** The fleet's HTTP surface: enqueue API, job lookup, Bull Board, health, metrics, OpenAPI. */
export {
  type ApiBoardOptions,
  type ApiOptions,
  buildApi,
  DEFAULT_BODY_LIMIT_BYTES,
  type RunningApi,
  type StartApiOptions,
  startApi,
} from './api';
export { type Authenticator, type AuthOptions, type Credentials, createAuthenticator, MIN_PASSWORD_CHARS, MIN_TOKEN_CHARS, type Principal } from './auth';
export { BacklogGuard, type BacklogOptions, type BacklogSource, DEFAULT_MAX_BACKLOG } from './backlog';
export { type BoardOptions, type MountBoardOptions, mountBoard } from './board';
export { type ErrorReply, errorReply } from './error-replies';
export {
  type HealthRoutesOptions,
  type HealthServerOptions,
  type ReadinessCheck,
  type RedisPingable,
  type RunningServer,
  readinessChecks,
  redisPing,
  registerHealthRoutes,
  startHealthServer,
} from './health';
export { HttpError, type HttpIssue } from './http-error';
export type { SearchHandler } from './routes/search';
export { DealInsightsRequest, EmbeddingsRequest, MAX_TEXTS_PER_REQUEST, WorkflowRequest } from './schemas';
export type { HandlerContext } from './v1-scope';
