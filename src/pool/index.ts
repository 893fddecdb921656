// The breaker lives in src/resilience (the cache's L2 uses the same one); re-exported for the pool's users.
export { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../resilience/circuit-breaker';
export { PooledWarehouse, type PooledWarehouseOptions, type WarehouseCallEvent } from './pooled-warehouse';
export { snowflakeConnector, toWarehouseError, type Connector, type SnowflakeConnectionSettings } from './snowflake-connector';
export { WarehousePool, type PoolStats, type PooledConnection, type WarehousePoolOptions } from './warehouse-pool';
export { CostMeter, creditsOf, estimateTokens, type CostPrices, type CostTotals, type CortexUsage } from './cost';
export { parsePrivateKey, publicKeyFingerprint, snowflakeCredentials, type Credentials, type SecretReloadEvent } from './credentials';
