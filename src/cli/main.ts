import { Command, InvalidArgumentError } from 'commander';
// The fleet itself (BullMQ, fastify, OpenTelemetry, the driver: ~1 s to load) is imported by the commands that run
// it, so `fleet --help`, `fleet config` and the enqueue commands start in a fraction of that.
import type { FleetOptions, RunningFleet } from '../app/fleet';
import { loadLocalSnowflake } from '../app/local-snowflake';
import { WORKER_ROLES, type WorkerRole } from '../app/roles/names';
import { handleSignals } from '../app/signals';
import { ConfigError, type FleetConfig, loadConfig } from '../config';
import { configTableMarkdown } from '../config/markdown';
import { snowflakeCredentials } from '../pool/credentials';
import { createLogger, type Logger } from '../telemetry/logger';
import { benchCommand } from './bench';
import { dealsCommand } from './deals';
import { enqueueCommand, workflowCommand } from './enqueue';
import { snowflakeCommand } from './snowflake';

function config(): FleetConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  return n;
};

/**
 * Starts the fleet with the signal handler in place from the first moment: a signal while a role still
 * waits for a dependency (a worker started while Redis is down) releases what was opened so far within the
 * bound and exits 0, as a signal later would. Resolves undefined when a signal ended the start-up.
 */
async function startWithSignals(cfg: FleetConfig, logger: Logger, opts: Omit<FleetOptions, 'logger' | 'onClose'>): Promise<RunningFleet | undefined> {
  let close: ((o: { budgetMs: number }) => Promise<void>) | undefined;
  let stopping = false;
  handleSignals(
    (o) => {
      stopping = true;
      return close ? close(o) : Promise.resolve();
    },
    { timeoutMs: cfg.shutdownTimeoutMs, logger },
  );
  try {
    const { startFleet } = await import('../app/fleet');
    return await startFleet(cfg, { ...opts, logger, onClose: (c) => (close = c) });
  } catch (err) {
    // Cut short by the signal: the handler is releasing what was opened and exits when it is done.
    if (stopping) return undefined;
    throw err;
  }
}

const program = new Command('fleet')
  .description('Job-queue worker fleet for warehouse-bound AI work (embeddings, deal batches, workflows).')
  .showHelpAfterError();

program
  .command('up')
  .description(
    'Run every role in one process with embedded defaults: a private redis-server when none answers at REDIS_URL, the local warehouse when no Snowflake account is configured.',
  )
  .action(async () => {
    const cfg = config();
    const logger = createLogger({ level: cfg.logLevel, secrets: cfg.secrets });
    const fleet = await startWithSignals(cfg, logger, {
      roles: WORKER_ROLES,
      embeddedRedis: true,
      embeddedWarehouse: true,
      api: { host: '127.0.0.1', generateToken: true },
    });
    if (!fleet) return;
    const env = `${fleet.redisEnv}${cfg.queuePrefix !== '{fleet}' ? ` FLEET_QUEUE_PREFIX='${cfg.queuePrefix}'` : ''}`;
    process.stderr.write(
      [
        '',
        'fleet is up:',
        `  redis      ${fleet.redisUrl}${fleet.privateRedis ? '  (private redis-server, temporary data)' : ''}`,
        `  warehouse  ${fleet.warehouseUrl ?? `Snowflake account ${cfg.snowflake.account}`}${fleet.localWarehouse ? '  (local warehouse: DuckDB + lexical stand-in for e5-base-v2)' : ''}`,
        `  workers    ${WORKER_ROLES.join(', ')}`,
        `  http api   ${fleet.apiUrl}  (Bull Board: ${fleet.apiUrl}/admin/queues, OpenAPI: ${fleet.apiUrl}/docs, metrics: ${fleet.apiUrl}/metrics)`,
        `  api token  ${fleet.generatedToken ? `${fleet.apiTokens[0]}  (generated for this run; set FLEET_API_TOKENS to choose your own)` : '(from FLEET_API_TOKENS)'}`,
        '',
        'enqueue over HTTP:',
        `  curl -s -H "Authorization: Bearer ${fleet.generatedToken ? fleet.apiTokens[0] : '$TOKEN'}" -H 'Content-Type: application/json' \\`,
        `       -d '{"text":"renewal is at risk"}' '${fleet.apiUrl}/v1/embeddings?waitMs=5000'`,
        '',
        'enqueue from another terminal:',
        `  ${env} npx fleet enqueue embed "renewal is at risk"`,
        `  ${env} npx fleet enqueue deals D-1 D-2 D-999999`,
        `  ${env} npx fleet workflow "Which enterprise deals are at risk this quarter, and why?"`,
        '',
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  });

program
  .command('worker')
  .description('Run one worker role against an external Redis and warehouse (one Kubernetes replica).')
  .requiredOption('--role <role>', `one of: ${WORKER_ROLES.join(', ')}`, (v: string) => {
    if (!(WORKER_ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${WORKER_ROLES.join(', ')}`);
    return v as WorkerRole;
  })
  .action(async (opts: { role: WorkerRole }) => {
    const cfg = config();
    const logger = createLogger({ level: cfg.logLevel, secrets: cfg.secrets, name: `fleet-${opts.role}` });
    await startWithSignals(cfg, logger, { roles: [opts.role], embeddedRedis: false, embeddedWarehouse: false, health: true });
  });

program
  .command('api')
  .description('Run the HTTP API alone (enqueue, job lookup, search proxy when co-located, Bull Board, /metrics, /healthz, /readyz) on PORT.')
  .action(async () => {
    const cfg = config();
    const logger = createLogger({ level: cfg.logLevel, secrets: cfg.secrets, name: 'fleet-api' });
    const fleet = await startWithSignals(cfg, logger, { roles: [], embeddedRedis: false, embeddedWarehouse: false, api: {} });
    if (!fleet) return;
    logger.info({ url: fleet.apiUrl }, 'http api listening');
  });

program
  .command('warehouse')
  .description(
    'Run the local Snowflake-protocol server (the local-snowflake development dependency: DuckDB inside, seeded demo dataset) for the real snowflake-sdk driver, configured like the fleet (LOCAL_WAREHOUSE_*, SNOWFLAKE_USERNAME and its password or key pair).',
  )
  .option('--port <port>', 'port to listen on (0 = any free port); default LOCAL_WAREHOUSE_PORT', int('port', 0, 65535))
  .option('--host <host>', 'interface to bind (0.0.0.0 in a container, so a Service can reach it)', '127.0.0.1')
  .action(async (opts: { port?: number; host: string }) => {
    const cfg = config();
    const logger = createLogger({ level: cfg.logLevel, secrets: cfg.secrets, name: 'fleet-warehouse' });
    const lw = cfg.localWarehouse;
    // The fleet's key pair, when one is configured, is registered for its user: the same configuration
    // logs in here as against Snowflake. Checked before the server starts.
    const keyed = cfg.snowflake.auth.method === 'SNOWFLAKE_JWT' ? snowflakeCredentials(cfg.snowflake.auth) : undefined;
    const { startLocalWarehouse } = loadLocalSnowflake();
    const started = Date.now();
    const server = await startLocalWarehouse({
      port: opts.port ?? lw.port,
      host: opts.host,
      user: cfg.snowflake.username,
      password: cfg.snowflake.password,
      loginLatencyMs: lw.loginLatencyMs,
      queryLatencyMs: lw.queryLatencyMs,
      seed: lw.seed,
      deals: lw.deals,
      resultChunkBytes: lw.resultChunkBytes,
      logger,
    });
    if (keyed) (await import('../app/warehouse')).registerKeyPair(server, cfg.snowflake.username, keyed);
    handleSignals(() => server.close(), { timeoutMs: cfg.shutdownTimeoutMs, logger });
    process.stderr.write(
      [
        '',
        `local warehouse listening on ${server.url} (ready in ${Date.now() - started} ms; login latency ${lw.loginLatencyMs} ms, query latency ${lw.queryLatencyMs} ms)`,
        `  tables: DEALS, GONG_CALLS, SLACK_MESSAGES, LINEAR_ISSUES (seed ${lw.seed}, ${lw.deals} deals)`,
        '  SNOWFLAKE.CORTEX.EMBED_TEXT_768 is a deterministic lexical stand-in for e5-base-v2, not the real model.',
        ...(keyed ? [`  user ${cfg.snowflake.username} logs in with its password or the key pair ${keyed.fingerprint()} (SNOWFLAKE_PRIVATE_KEY_FILE)`] : []),
        '',
        'connect the fleet to it:',
        `  SNOWFLAKE_ACCESS_URL=${server.url} npx fleet worker --role embeddings`,
        'or with snowflake-sdk directly:',
        `  snowflake.createConnection({ account: 'local', accessUrl: '${server.url}', username: '${cfg.snowflake.username}', password: '…' })`,
        '',
      ].join('\n'),
    );
  });

program
  .command('config')
  .description('Print the effective configuration (secrets masked), or with --markdown the table of every variable.')
  .option('--markdown', 'print the configuration table (docs/configuration.md)')
  .action((opts: { markdown?: boolean }) => {
    if (opts.markdown) {
      process.stdout.write(`${configTableMarkdown()}\n`);
      return;
    }
    const cfg = config();
    const masked = JSON.stringify(cfg, (k, v) => (k === 'secrets' ? undefined : typeof v === 'string' && cfg.secrets.includes(v) ? '[secret]' : v), 2);
    process.stdout.write(`${masked}\n`);
  });

const index = program.command('index').description('Search index maintenance.');
index
  .command('rebuild')
  .description(
    'Full (re)build of one namespace from a warehouse table: streams rows in chunks, embeds what is not cached, appends upserts to the index log (the index builder applies them).',
  )
  .requiredOption('--source <source>', 'calls | messages | deals', (v: string) => {
    if (!['calls', 'messages', 'deals'].includes(v)) throw new InvalidArgumentError('must be calls, messages or deals');
    return v as 'calls' | 'messages' | 'deals';
  })
  .option('--chunk <rows>', 'rows per chunk', int('chunk', 1, 5000), 500)
  .action(async (opts: { source: 'calls' | 'messages' | 'deals'; chunk: number }) => {
    const cfg = config();
    const logger = createLogger({ level: cfg.logLevel === 'info' ? 'warn' : cfg.logLevel, secrets: cfg.secrets, name: 'fleet-index' });
    const [{ startFleet }, { createEmbeddingService }, { appendUpserts, rebuildFromWarehouse }] = await Promise.all([
      import('../app/fleet'),
      import('../workers/embedding-processor'),
      import('../index-builder'),
    ]);
    const fleet = await startFleet(cfg, { roles: [], embeddedRedis: false, embeddedWarehouse: false, caches: true, logger });
    const log = fleet.redis();
    const service = createEmbeddingService({
      warehouse: fleet.warehouse,
      cache: fleet.caches?.embeddings,
      batching: { maxBatchSize: cfg.embeddings.maxBatchSize, maxWaitMs: cfg.embeddings.maxWaitMs, maxConcurrentBatches: cfg.pool.max },
    });
    const tty = process.stderr.isTTY;
    try {
      const result = await rebuildFromWarehouse({
        warehouse: fleet.warehouse,
        source: opts.source,
        chunkSize: opts.chunk,
        embed: async (text) => {
          const r = await service.embed('e5-base-v2', text);
          return { value: r.value, cached: r.tier !== 'warehouse' };
        },
        append: (items) => appendUpserts(log, cfg.queuePrefix, items, { dimensions: 768 }),
        onProgress: (p) => {
          const pct = p.total ? Math.min(100, Math.round((100 * p.done) / p.total)) : 100;
          const line = `${p.source}: ${p.done.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')} rows (${pct}%), ${p.rowsPerS} rows/s, ${p.cached} from cache`;
          process.stderr.write(tty ? `\r${line}` : `${line}\n`);
        },
      });
      process.stderr.write(
        `${tty ? '\n' : ''}appended ${result.done} upserts to namespace "${opts.source}"; the index builder (fleet worker --role index) applies them and snapshots.\n`,
      );
    } finally {
      await service.close();
      await log.quit();
      await fleet.close();
    }
  });

snowflakeCommand(program, () => config().snowflake.username);

const enqueue = program
  .command('enqueue')
  .description(
    'Enqueue a job and print its result (needs running workers, e.g. `fleet up`). `--tenant <name>` says who it is for: tenants are served fairly, each within its own limits (over one: exit 75).',
  );
enqueueCommand(enqueue, config);
workflowCommand(program, config);
dealsCommand(program, config);

benchCommand(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`fleet: ${err.message}\n`);
  process.exit(1);
});
