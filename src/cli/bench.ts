import type { Command } from 'commander';
import { BENCHMARK_NAMES } from './bench-names';

/** `fleet bench <name> [--json] [--quick]` (and the options of single benchmarks). */
export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description(`Run a benchmark: naive way vs the fleet's way in one process. One of: ${BENCHMARK_NAMES.join(', ')}.`)
    .argument('<name>', 'benchmark name')
    .option('--json', 'print only the JSON result on the last stdout line (progress goes to stderr)')
    .option('--quick', 'smaller sizes, for a smoke run')
    .option('--dataset <name>', 'ann only: glove (real GloVe vectors, a dev dependency), hard, easy or both (default)')
    .option('--n <count>', 'ann only: vectors indexed (default 100000; 10000 with --quick)')
    .option('--a-jobs <count>', "fairness only: tenant A's jobs, enqueued at once (default 50000; 5000 with --quick)")
    .option('--b-jobs <count>', "fairness only: tenant B's jobs, spread over A's drain (default 500; 100 with --quick)")
    .option('--shards <counts>', 'scale only: run on a private Redis Cluster (3 masters) with the embeddings queue in each of these shard counts, e.g. 1,3')
    .action(async (name: string, opts: { json?: boolean; quick?: boolean; dataset?: string; n?: string; aJobs?: string; bJobs?: string; shards?: string }) => {
      if ((opts.dataset !== undefined || opts.n !== undefined) && name !== 'ann') {
        process.stderr.write('fleet bench: --dataset and --n apply to the ann benchmark only\n');
        process.exit(2);
      }
      if ((opts.aJobs !== undefined || opts.bJobs !== undefined) && name !== 'fairness') {
        process.stderr.write('fleet bench: --a-jobs and --b-jobs apply to the fairness benchmark only\n');
        process.exit(2);
      }
      if (opts.shards !== undefined && name !== 'scale') {
        process.stderr.write('fleet bench: --shards applies to the scale benchmark only\n');
        process.exit(2);
      }
      const shards = opts.shards?.split(',').map((s) => Number(s.trim()));
      if (shards && (shards.length === 0 || shards.some((k) => !Number.isInteger(k) || k < 1 || k > 16))) {
        process.stderr.write(`fleet bench: --shards must list shard counts from 1 to 16, e.g. 1,3; got ${JSON.stringify(opts.shards)}\n`);
        process.exit(2);
      }
      const count = (flag: string, v: string | undefined, min: number, max: number) => {
        const x = v === undefined ? undefined : Number(v);
        if (x !== undefined && (!Number.isInteger(x) || x < min || x > max)) {
          process.stderr.write(`fleet bench: ${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}\n`);
          process.exit(2);
        }
        return x;
      };
      const n = count('--n', opts.n, 100, 10_000_000);
      const aJobs = count('--a-jobs', opts.aJobs, 1, 1_000_000);
      const bJobs = count('--b-jobs', opts.bJobs, 1, 100_000);
      const { runBenchmark } = await import('../bench');
      const result = await runBenchmark(name, {
        quick: !!opts.quick,
        dataset: opts.dataset,
        n,
        aJobs,
        bJobs,
        shards,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (!opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    });
}
