export type { BenchmarkName } from '../cli/bench-names';

/** What every benchmark is given. */
export interface BenchContext {
  /** Smaller sizes for a smoke run (tests use it); figures are then not comparable to the README's. */
  quick: boolean;
  /** Progress lines (stderr); the result is returned, not printed. */
  log: (line: string) => void;
  /** `ann` only: the data set (`glove`, `hard`, `easy`, `both`) and the number of vectors indexed. */
  dataset?: string;
  n?: number;
  /** `fairness` only: tenant A's jobs (enqueued at once) and tenant B's (spread over A's drain). */
  aJobs?: number;
  bJobs?: number;
  /** `scale` only: shard counts of the embeddings queue, each run on a private Redis Cluster. */
  shards?: number[];
}

export type Benchmark = (ctx: BenchContext) => Promise<Record<string, unknown>>;
