/**
 * local-snowflake: a Snowflake-protocol HTTP server over embedded DuckDB, so the real snowflake-sdk
 * driver and the SQL written for Snowflake run unchanged in development and tests, offline.
 *
 * @example
 *   import { startLocalWarehouse } from 'local-snowflake';
 *   const wh = await startLocalWarehouse({ deals: 100, loginLatencyMs: 0 });
 *   const conn = snowflake.createConnection({ account: 'local', accessUrl: wh.url, username: 'fleet', password: 'fleet' });
 *   // … conn.connect(), conn.execute(…) …
 *   await wh.close();
 */

export { DATASET_HISTORY_DAYS } from './dataset';
export type { DatasetCounts } from './dataset-load';
export { cosineSimilarity, EMBEDDER_DIMS, embedText } from './embedder';
export { EMBED_768_MODELS } from './functions';
export type { LocalWarehouseOptions, WarehouseFault, WarehouseLogger } from './options';
export { type LocalWarehouseProcess, type LocalWarehouseProcessOptions, startLocalWarehouseProcess } from './process';
export type { QueryExecutionStatus, QueryHistoryEntry, QueryHistoryFilter } from './query-history';
export { type LocalWarehouse, startLocalWarehouse } from './server';
export { SnowflakeError } from './snowflake-error';
export type { LoginAuthenticator, LoginFailureReason, QueryKind, WarehouseStats } from './stats';
export type { UserProperties, UserProperty, UserType } from './users';
