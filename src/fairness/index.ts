export { type TenantCounts, TenantLanes } from './lanes';
export { DEFAULT_FAIRNESS, FAIR_QUEUES, type FairnessSettings, fairnessSettings, isFairQueue, shardShare, type TenantPolicy } from './settings';
export { attachWorkerLanes, type WorkerLanesOptions } from './worker-lanes';
