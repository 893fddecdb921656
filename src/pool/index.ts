// The breaker lives in src/resilience (the cache's L2 uses the same one); re-exported for the pool's users.
export { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../resilience/circuit-breaker';
export { type CortexUsage, CostMeter, type CostPrices, type CostTotals, creditsOf, estimateTokens } from './cost';
export { type Credentials, parsePrivateKey, publicKeyFingerprint, type SecretReloadEvent, snowflakeCredentials } from './credentials';
export { PooledWarehouse, type PooledWarehouseOptions, type WarehouseCallEvent } from './pooled-warehouse';
export { type Connector, type SnowflakeConnectionSettings, snowflakeConnector, toWarehouseError } from './snowflake-connector';
export { type PooledConnection, type PoolStats, WarehousePool, type WarehousePoolOptions } from './warehouse-pool';
