import type { Cluster, Redis } from 'ioredis';

/** True for an ioredis Cluster client (ioredis sets `isCluster` on both kinds; a test double may lack it). */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Partial<Cluster>).isCluster === true;
}
