// The breaker lives in src/resilience (the cache's L2 uses the same one); re-exported for the pool's users.
export { CircuitBreaker } from '../resilience/circuit-breaker';
export { CostMeter, creditsOf, estimateTokens } from './cost';
export { type Credentials, snowflakeCredentials } from './credentials';
export { PooledWarehouse, type PooledWarehouseOptions, type WarehouseCallEvent } from './pooled-warehouse';
export { type SnowflakeConnectionSettings, snowflakeConnector } from './snowflake-connector';
export { WarehousePool, type WarehousePoolOptions } from './warehouse-pool';
