import type { Command } from 'commander';
import type { FleetConfig } from '../config';
import { ValidationError } from '../contracts/errors';

/**
 * `fleet deals invalidate <id…>`: drops the deals' cached rows on every replica after a CRM update (the
 * library's `invalidateDeals`, on the configured Redis and `CACHE_KEY_PREFIX`). Bad ids exit 2 with one line
 * naming each; Redis trouble exits 1.
 */
export function dealsCommand(program: Command, config: () => FleetConfig): void {
  const deals = program.command('deals').description('Deal cache maintenance.');
  deals
    .command('invalidate')
    .description('Drop cached deal rows on every replica (after a CRM update): the next job reads them from the warehouse.')
    .argument('<ids...>', 'deal ids (1-1,000, distinct)')
    .option('--json', 'print the result as JSON')
    .action(async (ids: string[], opts: { json?: boolean }) => {
      const cfg = config();
      const [{ createRedis }, { invalidateDeals }] = await Promise.all([import('../app/redis'), import('../cache')]);
      // No retries: a CLI call should fail at once when Redis is away, not wait for it.
      const redis = createRedis(cfg.redis, { retryStrategy: () => null, lazyConnect: false, maxRetriesPerRequest: 0 });
      redis.on('error', () => undefined); // the command's own rejection reports it
      try {
        const r = await invalidateDeals(redis, ids, { prefix: cfg.cache.keyPrefix });
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(r)}\n`
            : `invalidated ${r.dealIds.length} deal${r.dealIds.length === 1 ? '' : 's'}: ${r.deleted} Redis entr${r.deleted === 1 ? 'y' : 'ies'} removed, ${r.receivers} cache${r.receivers === 1 ? '' : 's'} notified\n`,
        );
      } catch (err) {
        process.stderr.write(`fleet deals invalidate: ${(err as Error).message}\n`);
        process.exitCode = err instanceof ValidationError ? 2 : 1;
      } finally {
        redis.disconnect();
      }
    });
}
