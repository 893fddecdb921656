/**
 * The benchmarks `fleet bench` runs. Here, in a module with no imports, so that the CLI can name them
 * without loading src/bench (a development tool) until one runs.
 */
export const BENCHMARK_NAMES = ['pool', 'ann', 'scale', 'api', 'cache', 'coalesce', 'flow'] as const;
export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];

/** What every benchmark is given. */
export interface BenchContext {
  /** Smaller sizes for a smoke run (tests use it); figures are then not comparable to the README's. */
  quick: boolean;
  /** Progress lines (stderr); the result is returned, not printed. */
  log: (line: string) => void;
}

export type Benchmark = (ctx: BenchContext) => Promise<Record<string, unknown>>;
