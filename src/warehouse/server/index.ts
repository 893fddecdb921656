/**
 * The local warehouse: a Snowflake-protocol HTTP server over embedded DuckDB, so the real snowflake-sdk
 * driver, the pool and the fleet's SQL run unchanged in development, tests and `fleet up`.
 */
export { startLocalWarehouse, type LocalWarehouse } from './server';
export type { LocalWarehouseOptions, WarehouseFault, WarehouseLogger } from './options';
export type { LoginAuthenticator, LoginFailureReason, QueryKind, WarehouseStats } from './stats';
export type { UserProperties, UserProperty, UserType } from './users';
export type { QueryExecutionStatus, QueryHistoryEntry, QueryHistoryFilter } from './query-history';
export type { DatasetCounts } from './dataset-load';
export { DATASET_HISTORY_DAYS } from './dataset';
export { EMBED_768_MODELS } from './functions';
