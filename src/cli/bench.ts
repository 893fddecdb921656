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
    .action(async (name: string, opts: { json?: boolean; quick?: boolean }) => {
      const { runBenchmark } = await import('../bench');
      const result = await runBenchmark(name, { quick: !!opts.quick, log: (line) => process.stderr.write(`${line}\n`) });
      if (!opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    });
}
