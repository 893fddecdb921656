import type { Command } from 'commander';
import { type FleetConfig, jobOptionsFrom } from '../config';
import { RedisUnavailableError, TenantLimitError, ValidationError } from '../contracts/errors';
import { Tenant } from '../contracts/tenants';
import { decodeVector } from '../contracts/vector-codec';
import type { JobHandle, Producer } from '../producers';
import { MAX_TIMER_MS as MAX_RESULT_TIMEOUT_MS } from '../resilience';

interface CommonOpts {
  wait: boolean;
  timeout: string;
  idempotencyKey?: string;
  tenant?: string;
}

async function withProducer<T>(config: () => FleetConfig, fn: (p: Producer) => Promise<T>): Promise<T> {
  const cfg = config();
  // Loaded when a command runs (BullMQ, ioredis), not when the CLI starts.
  const [{ createRedis }, { createProducer }] = await Promise.all([import('../app/redis'), import('../producers')]);
  const connection = createRedis(cfg.redis, { retryStrategy: () => null, lazyConnect: false });
  // No buffering: a CLI that exits cannot hold jobs for later, so with Redis away it says so at once.
  const producer = createProducer({
    connection,
    prefix: cfg.queuePrefix,
    defaultJobOptions: jobOptionsFrom(cfg.jobs),
    buffer: false,
    connectWaitMs: 3_000,
    fairness: cfg.fairness,
    shards: cfg.shards.counts,
    previousShards: cfg.shards.previous,
  });
  try {
    return await fn(producer);
  } finally {
    await producer.close().catch(() => undefined);
    await connection.quit().catch(() => undefined);
  }
}

/** Checked before anything is enqueued: a bad --timeout must not leave a job behind. */
function timeoutMs(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 1 || n > MAX_RESULT_TIMEOUT_MS) {
    throw new ValidationError([{ path: '--timeout', message: `must be a number of milliseconds from 1 to ${MAX_RESULT_TIMEOUT_MS}` }]);
  }
  return n;
}

/** Checked before anything is enqueued, like the library checks it: a bad --tenant is a usage error (exit 2). */
function tenantOf(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const parsed = Tenant.safeParse(v);
  if (!parsed.success) throw new ValidationError([{ path: '--tenant', message: parsed.error.issues[0]?.message ?? 'is not a tenant name' }]);
  return parsed.data;
}

const TENANT_HELP =
  'who the job is for (1-128 letters, digits or _ . : / -); its jobs are served fairly and counted against its limits (default: the shared tenant "default")';

async function report<R>(handle: JobHandle<R>, opts: CommonOpts, timeout: number, show: (r: R) => unknown): Promise<void> {
  process.stderr.write(`enqueued ${handle.queue}/${handle.id}\n`);
  if (!opts.wait) return;
  const result = await handle.result({ timeoutMs: timeout });
  process.stdout.write(`${JSON.stringify(show(result), null, 2)}\n`);
}

/** Exit code when Redis is unreachable and nothing was enqueued (sysexits' EX_UNAVAILABLE): retry later. */
const EXIT_REDIS_UNAVAILABLE = 69;
/** Exit code when the tenant is over one of its limits and nothing was enqueued (sysexits' EX_TEMPFAIL): retry later. */
const EXIT_TENANT_LIMIT = 75;

/** One line: which limit the tenant is over, and when a retry can succeed. */
function tenantLimitLine(err: TenantLimitError): string {
  const s = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
  const what =
    err.kind === 'queued'
      ? `is at its limit of ${err.limit} unfinished job(s) in ${err.queue} (it has ${err.current}; TENANT_MAX_QUEUED or TENANT_POLICIES)`
      : `is over its rate limit of ${err.limit} job(s)/s in ${err.queue} (TENANT_RATE_PER_S or TENANT_POLICIES)`;
  const when = err.kind === 'queued' ? 'retry once some of its jobs have finished' : `retry in ${s} s`;
  return `fleet: tenant ${JSON.stringify(err.tenant)} ${what}; nothing was enqueued, ${when}`;
}

/** The exit codes the enqueue commands document in their help. */
const ENQUEUE_EXIT_CODES = [
  'Exit codes:',
  '  0   done',
  '  1   the job failed, or waiting for it timed out (it may still complete)',
  '  2   invalid input: nothing was enqueued',
  '  69  Redis unreachable: nothing was enqueued',
  '  75  the tenant is over its queued or rate limit: nothing was enqueued, retry later',
].join('\n');

function fail(err: unknown): never {
  if (err instanceof RedisUnavailableError) {
    process.stderr.write(`fleet: ${err.message}\n`);
    process.exit(EXIT_REDIS_UNAVAILABLE);
  }
  if (err instanceof TenantLimitError) {
    process.stderr.write(`${tenantLimitLine(err)}\n`);
    process.exit(EXIT_TENANT_LIMIT);
  }
  process.stderr.write(`fleet enqueue: ${(err as Error).message}\n`);
  process.exit(err instanceof ValidationError ? 2 : 1);
}

/** `fleet workflow "question"`: starts a workflow and prints the Markdown report (or JSON). */
export function workflowCommand(program: Command, config: () => FleetConfig): void {
  program
    .command('workflow')
    .description('Answer a question with a workflow (collect → analyze → synthesize) and print the Markdown report. Needs running workers (`fleet up`).')
    .argument('<question...>', 'the question; several words are joined with spaces')
    .option('--type <type>', 'workflow type: deal-risk (needs HubSpot deals) or general', 'deal-risk')
    .option('--json', 'print the structured report instead of Markdown')
    .option('--idempotency-key <key>', 'a retried call with the same key returns the same workflow')
    .option('--tenant <name>', TENANT_HELP)
    .option('--timeout <ms>', 'how long to wait for the report', '60000')
    .addHelpText('after', `\n${ENQUEUE_EXIT_CODES}`)
    .action(async (words: string[], opts: { type: string; json?: boolean; idempotencyKey?: string; tenant?: string; timeout: string }) => {
      try {
        const timeout = timeoutMs(opts.timeout);
        const tenant = tenantOf(opts.tenant);
        await withProducer(config, async (p) => {
          const handle = await p.workflow(words.join(' '), { type: opts.type as 'deal-risk', idempotencyKey: opts.idempotencyKey, tenant });
          process.stderr.write(`workflow ${handle.id} started\n`);
          const report = await handle.result({ timeoutMs: timeout });
          process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : report.markdown}\n`);
        });
      } catch (err) {
        fail(err);
      }
    });
}

/** `fleet enqueue embed|deals`: the CLI producer, validated exactly like the library and the HTTP API. */
export function enqueueCommand(enqueue: Command, config: () => FleetConfig): void {
  enqueue
    .command('embed')
    .description('Embed one text (quote it) and print the vector summary.')
    .argument('<text...>', 'the text; several words are joined with spaces')
    .option('--model <model>', 'embedding model', 'e5-base-v2')
    .option('--index <namespace/id>', 'also upsert into the search index under namespace/id')
    .option('--idempotency-key <key>', 'a retried enqueue with the same key returns the same job')
    .option('--tenant <name>', TENANT_HELP)
    .option('--no-wait', 'print the job id and exit without waiting for the result')
    .option('--timeout <ms>', 'how long to wait for the result', '30000')
    .addHelpText('after', `\n${ENQUEUE_EXIT_CODES}`)
    .action(async (words: string[], opts: CommonOpts & { model: string; index?: string }) => {
      try {
        const timeout = timeoutMs(opts.timeout);
        const tenant = tenantOf(opts.tenant);
        const text = words.join(' ');
        const index = opts.index
          ? (() => {
              const slash = opts.index.indexOf('/');
              if (slash < 1) throw new ValidationError([{ path: '--index', message: 'must look like namespace/id' }]);
              return { namespace: opts.index.slice(0, slash), id: opts.index.slice(slash + 1) };
            })()
          : undefined;
        await withProducer(config, async (p) => {
          const handle = await p.embed(text, { model: opts.model as 'e5-base-v2', idempotencyKey: opts.idempotencyKey, index, tenant });
          await report(handle, opts, timeout, (r) => {
            const v = decodeVector(r.vector);
            return {
              model: r.model,
              dims: r.dims,
              cached: r.cached,
              batch: r.batch,
              indexed: r.indexed,
              head: Array.from(v.slice(0, 6), (x) => Number(x.toFixed(4))),
            };
          });
        });
      } catch (err) {
        fail(err);
      }
    });

  enqueue
    .command('deals')
    .description('Get insights for deal ids (one deal-batch job).')
    .argument('<ids...>', 'deal ids, e.g. D-1 D-2')
    .option('--idempotency-key <key>', 'a retried enqueue with the same key returns the same job')
    .option('--tenant <name>', TENANT_HELP)
    .option('--no-wait', 'print the job id and exit without waiting for the result')
    .option('--timeout <ms>', 'how long to wait for the result', '30000')
    .addHelpText('after', `\n${ENQUEUE_EXIT_CODES}`)
    .action(async (ids: string[], opts: CommonOpts) => {
      try {
        const timeout = timeoutMs(opts.timeout);
        const tenant = tenantOf(opts.tenant);
        await withProducer(config, async (p) => {
          const handle = await p.dealInsights(ids, { idempotencyKey: opts.idempotencyKey, tenant });
          await report(handle, opts, timeout, (r) => r);
        });
      } catch (err) {
        fail(err);
      }
    });
}
