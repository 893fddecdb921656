import type { Command } from 'commander';
import { BENCHMARK_NAMES } from './bench-names';

/** `fleet bench <name> [--json] [--quick]`. */
export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description(`Run a benchmark: naive way vs the fleet's way in one process. One of: ${BENCHMARK_NAMES.join(', ')}.`)
    .argument('<name>', 'benchmark name')
    .option('--json', 'print only the JSON result on the last stdout line (progress goes to stderr)')
    .option('--quick', 'smaller sizes, for a smoke run')
    .option('--dataset <name>', 'ann only: glove (real GloVe vectors, a dev dependency), hard, easy or both (default)')
    .option('--n <count>', 'ann only: vectors indexed (default 100000; 10000 with --quick)')
    .action(async (name: string, opts: { json?: boolean; quick?: boolean; dataset?: string; n?: string }) => {
      if ((opts.dataset !== undefined || opts.n !== undefined) && name !== 'ann') {
        process.stderr.write('fleet bench: --dataset and --n apply to the ann benchmark only\n');
        process.exit(2);
      }
      const n = opts.n === undefined ? undefined : Number(opts.n);
      if (n !== undefined && (!Number.isInteger(n) || n < 100 || n > 10_000_000)) {
        process.stderr.write(`fleet bench: --n must be an integer from 100 to 10000000, got ${JSON.stringify(opts.n)}\n`);
        process.exit(2);
      }
      const { runBenchmark } = await import('../bench');
      const result = await runBenchmark(name, { quick: !!opts.quick, dataset: opts.dataset, n, log: (line) => process.stderr.write(`${line}\n`) });
      if (!opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    });
}
