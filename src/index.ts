/**
 * The fleet's public client library: enqueue work from another Node service.
 *
 * @example
 *   import { createProducer, decodeVector } from 'warehouse-fleet';
 */
export * from './contracts';
export * from './producers';
