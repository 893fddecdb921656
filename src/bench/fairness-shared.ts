import type { JobsOptions } from 'bullmq';
import type { FairnessSettings } from '../fairness';

/** What the fairness benchmark (fairness.ts) and its producer process (fairness-producers.ts) share. */

/** The bulk tenant (its whole backlog at once) and the small one (a trickle over the same period). */
export const TENANT_A = 'tenant-a';
export const TENANT_B = 'tenant-b';
/** The most texts one `producer.embed` call takes: A's backlog goes in calls of this many. */
export const ENQUEUE_CHUNK = 10_000;

/** One phase's enqueues by one producer process: A's jobs at once, B's one by one, evenly over `periodMs` from the start. */
export interface ProducerPhase {
  redisUrl: string;
  prefix: string;
  /** Texts are `<seed>-a note i…` and `<seed>-b note i…`. */
  seed: string;
  aJobs: number;
  bJobs: number;
  periodMs: number;
  fairness: FairnessSettings | false;
  jobOpts: JobsOptions;
}

export type ProducerReply =
  | {
      type: 'enqueued';
      aIds: string[];
      bIds: string[];
      /** B's job id and the Date.now() at which its `producer.embed` call began. */
      calledAt: [string, number][];
      /** How long A's calls took, all chunks, and the Date.now() when the last returned. */
      aEnqueueS: number;
      aEnqueuedAt: number;
      /** The latest B call against its schedule. */
      bMaxLagMs: number;
    }
  | { type: 'error'; message: string };
