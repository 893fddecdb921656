import { loadConfig } from '../config';
import { type AnnDatasetName, runAnnBench } from './ann';
import { runApiBench } from './api-load';
import { runCacheBench } from './cache';
import { runCoalesceBench } from './coalesce';
import type { BenchContext, Benchmark, BenchmarkName } from './context';
import { runFairnessBench } from './fairness';
import { runFlowBench } from './flow';
import { runPoolBench } from './pool';
import { runScaleBench } from './scale';

export type { BenchContext } from './context';

/**
 * `fleet bench <name>`: each runs the naive way and the fleet's way in the same process. Development only:
 * the CLI loads this module in its `bench` action, no role imports it (test/dev-only-imports.test.ts).
 */
const BENCHMARKS: Record<BenchmarkName, Benchmark> = {
  pool: runPoolBench,
  // The index as configured (INDEX_METRIC, INDEX_DTYPE, INDEX_CONNECTIVITY, INDEX_EXPANSION_*; defaults otherwise).
  ann: (ctx) => {
    const { metric, dtype, connectivity, expansionAdd, expansionSearch } = loadConfig(process.env).index;
    return runAnnBench({
      dataset: ctx.dataset as AnnDatasetName | undefined,
      n: ctx.n ?? (ctx.quick ? 10_000 : 100_000),
      // glove defaults to 1,000 held-out queries, the synthetic sets to 500.
      queries: ctx.quick ? 100 : undefined,
      settings: { metric, dtype, connectivity, expansionAdd, expansionSearch },
      onProgress: (m: string) => ctx.log(m),
    });
  },
  scale: runScaleBench,
  api: runApiBench,
  cache: runCacheBench,
  coalesce: runCoalesceBench,
  flow: runFlowBench,
  fairness: runFairnessBench,
};

export async function runBenchmark(name: string, ctx: BenchContext): Promise<Record<string, unknown>> {
  const bench = Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name as BenchmarkName] : undefined;
  if (!bench) throw new Error(`unknown benchmark ${JSON.stringify(name)}; one of: ${Object.keys(BENCHMARKS).join(', ')}`);
  const started = Date.now();
  const result = await bench(ctx);
  return { ...result, node: process.version, cpus: require('node:os').cpus().length, total_s: round1((Date.now() - started) / 1000) };
}

const round1 = (v: number) => Math.round(v * 10) / 10;
