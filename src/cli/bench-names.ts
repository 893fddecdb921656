/**
 * The benchmarks `fleet bench` runs (src/bench/index.ts implements exactly these: its table is typed by
 * this list). Named in the CLI, in a module without imports, so that the CLI loads src/bench (a development
 * tool that the production image leaves out) only when one runs.
 */
export const BENCHMARK_NAMES = ['pool', 'ann', 'scale', 'api', 'cache', 'coalesce', 'flow', 'fairness'] as const;
export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];
