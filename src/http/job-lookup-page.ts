import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ValidationError } from '../contracts/errors';
import { HttpError } from './http-error';
import { BatchParams, type BatchView, createJobLookup, type FoundJob, type JobLookup, JobLookupQuery, type JobPage } from './job-lookup';
import { QueueSet } from './queue-set';
import { validateRequest } from './schemas';

export interface JobLookupPageOptions {
  /** Where the page is served, e.g. `/admin/jobs`. */
  path: string;
  queues: readonly Queue[];
  /** Bull Board's base path: each job links to its page there. */
  boardPath: string;
  /** Answers a request without board credentials (the board's own challenge); undefined lets it through. */
  refuse: (req: FastifyRequest, reply: FastifyReply) => FastifyReply | undefined;
  /** Deadline of the Redis work of one page. Default 5,000 ms. */
  redisTimeoutMs?: number;
}

const BY = [
  ['idempotencyKey', 'idempotency key'],
  ['id', 'job id'],
  ['batch', 'batch id'],
  ['text', 'exact text'],
  ['textHash', 'text hash'],
  ['tenant', 'tenant'],
] as const;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);

const STYLE = `body{font:14px system-ui,sans-serif;margin:0;color:#1f2933}header{background:#2d3748;color:#fff;padding:10px 20px}
header a{color:#cbd5e0;margin-left:16px}.batch-failed{color:#9b2c2c}main{padding:16px 20px}form{display:flex;gap:8px;margin-bottom:16px;flex-wrap:wrap}
input[type=search]{flex:1;min-width:280px;padding:6px}select,button{padding:6px}table{border-collapse:collapse;margin:8px 0 16px}
td,th{border-bottom:1px solid #e2e8f0;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f7fafc}
.error{color:#9b2c2c;background:#fff5f5;padding:8px 12px;border:1px solid #feb2b2}.muted{color:#718096}code{font-size:13px}`;

/**
 * The operator page that finds jobs and opens batches (issue #19): server-rendered HTML behind the same
 * credentials as Bull Board, over the same lookups as `GET /v1/jobs` and `GET /v1/batches/:id`. Search by
 * idempotency key, job id, batch id, text (its hash) or tenant; a batch shows its record (QUERY_TAG, query id,
 * timing, outcome) and the jobs it served, each linked to Bull Board and to its own batch. Read-only: it
 * only reads, so admins and viewers alike may use it. Hidden from the OpenAPI document.
 */
export async function mountJobLookupPage(app: FastifyInstance, opts: JobLookupPageOptions): Promise<void> {
  const queues = new QueueSet(opts.queues);
  const lookup = createJobLookup({ queues, redisTimeoutMs: opts.redisTimeoutMs ?? 5_000 });
  const { path, boardPath } = opts;
  const pageUrl = (params: Record<string, string | undefined>) => {
    const qs = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
    return `${path}?${qs.toString()}`;
  };
  const batchLink = (queue: string | undefined, id: string | null) =>
    id ? `<a class="batch-link" href="${esc(pageUrl({ batch: id, queue }))}">${esc(id)}</a>` : '<span class="muted">none</span>';
  const boardLink = (queue: string, id: string) => `${boardPath}/queue/${encodeURIComponent(queue)}/${encodeURIComponent(id)}`;
  // Every batch a job names: those that served it, and those whose call failed it (marked).
  const jobBatches = (j: FoundJob) =>
    j.batches.length === 0
      ? batchLink(j.queue, null)
      : j.batches.map((b) => `${batchLink(j.queue, b.batchId)}${b.outcome === 'failed' ? ' <span class="batch-failed">failed</span>' : ''}`).join('<br>');

  const jobsTable = (jobs: readonly FoundJob[]) =>
    jobs.length === 0
      ? '<p class="muted" id="no-jobs">No job found (none matches, or it was removed after its retention period).</p>'
      : `<table id="jobs"><thead><tr><th>job</th><th>queue</th><th>state</th><th>batch</th><th>created</th><th>finished</th><th></th></tr></thead><tbody>${jobs
          .map(
            (j) =>
              `<tr data-job="${esc(j.id)}"><td><code>${esc(j.id)}</code></td><td>${esc(j.queue)}</td><td>${esc(j.state)}${j.failedReason ? ` <span class="muted">(${esc(j.failedReason)})</span>` : ''}</td>` +
              `<td>${jobBatches(j)}</td><td>${esc(j.createdAt ?? '')}</td><td>${esc(j.finishedAt ?? '')}</td>` +
              `<td><a href="${esc(boardLink(j.queue, j.id))}">Bull Board</a></td></tr>`,
          )
          .join('')}</tbody></table>`;

  const batchSection = (b: BatchView, jobs: FoundJob[], next: string | null) => {
    const rows: [string, string][] = [
      ['batch', `<code id="batch-id">${esc(b.batchId)}</code>`],
      ['outcome', `<span id="batch-outcome">${esc(b.outcome ?? 'unknown')}</span>${b.error ? ` <span class="error">${esc(b.error)}</span>` : ''}`],
      ['coalescer', esc(b.name ?? '')],
      ['queues', esc(b.queues.join(', '))],
      ['size', `${esc(b.size ?? '')} distinct, ${esc(b.jobsServed ?? '')} jobs served`],
      ['started', esc(b.startedAt ?? '')],
      ['finished', esc(b.finishedAt ?? '')],
      ['duration', b.durationMs === null ? '' : `${esc(b.durationMs)} ms`],
      ['QUERY_TAG', b.queryTag ? `<code id="batch-tag">${esc(JSON.stringify(b.queryTag))}</code>` : '<span class="muted">not recorded</span>'],
      [
        'query id',
        b.queryId ? `<code id="batch-query-id">${esc(b.queryId)}</code>` : '<span class="muted">not known (find it in QUERY_HISTORY by the tag)</span>',
      ],
    ];
    if (b.parent) rows.push(['split from', batchLink(b.queues[0], b.parent)]);
    return (
      `<h2>Batch ${esc(b.batchId)}</h2><table id="batch"><tbody>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</tbody></table>` +
      `<h3>Its jobs (${esc(b.total)})</h3>${jobsTable(jobs)}${next ? `<a id="next" href="${esc(next)}">next page</a>` : ''}`
    );
  };

  const render = (reply: FastifyReply, status: number, form: { queue?: string; by?: string; q?: string }, body: string) => {
    const queueOptions = queues
      .names()
      .map((n) => `<option${n === form.queue ? ' selected' : ''}>${esc(n)}</option>`)
      .join('');
    const byOptions = BY.map(([v, label]) => `<option value="${v}"${v === form.by ? ' selected' : ''}>${label}</option>`).join('');
    reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    return reply.send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Find jobs · warehouse-fleet</title><style>${STYLE}</style></head><body>` +
        `<header><strong>warehouse-fleet · find jobs</strong><a href="${esc(boardPath)}">Bull Board</a></header><main>` +
        `<form method="get" action="${esc(path)}" role="search"><select name="queue" aria-label="queue">${queueOptions}</select>` +
        `<select name="by" aria-label="find by">${byOptions}</select>` +
        `<input type="search" name="q" aria-label="search" placeholder="idempotency key, job id, batch id, text or tenant" value="${esc(form.q ?? '')}" required maxlength="8000">` +
        `<button type="submit">Find</button></form>${body}</main></body></html>`,
    );
  };

  const problem = (err: unknown): { status: number; message: string } | undefined => {
    if (err instanceof ValidationError) return { status: 400, message: err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') };
    if (err instanceof HttpError) return { status: err.status, message: err.message };
    return undefined;
  };

  const search = async (lookupApi: JobLookup, query: Record<string, string | undefined>) => {
    const queue = query.queue || queues.names()[0] || '';
    const by = query.by && BY.some(([v]) => v === query.by) ? query.by : 'idempotencyKey';
    const form = { queue, by, q: query.q };
    if (query.batch !== undefined) {
      const { id } = validateRequest(BatchParams, { id: query.batch }, 'batch');
      const batch = await lookupApi.getBatch(id, { queue: query.queue || undefined, limit: 1 });
      // The jobs with their states, from the first queue holding the batch.
      const page: JobPage = await lookupApi.findJobs(
        validateRequest(JobLookupQuery, { queue: batch.queues[0], batch: batch.batchId, cursor: query.cursor, limit: '100' }, 'query'),
      );
      const next = page.nextCursor ? pageUrl({ batch: batch.batchId, queue: batch.queues[0], cursor: page.nextCursor }) : null;
      return { form: { ...form, by: 'batch', q: batch.batchId }, body: batchSection(batch, page.jobs, next) };
    }
    if (!query.q)
      return { form, body: '<p class="muted">Find a job by its idempotency key, id, batch, text or tenant; open its batch to see the other jobs.</p>' };
    const page = await lookupApi.findJobs(validateRequest(JobLookupQuery, { queue, [by]: query.q, cursor: query.cursor, limit: '50' }, 'query'));
    const next = page.nextCursor ? pageUrl({ queue, by, q: query.q, cursor: page.nextCursor }) : null;
    return {
      form,
      body: `<h2>Jobs by ${esc(by)}</h2>${jobsTable(page.jobs)}${next ? `<a id="next" href="${esc(next)}">next page</a>` : ''}`,
    };
  };

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => opts.refuse(req, reply));
    scope.get(path, { schema: { hide: true } }, async (req, reply) => {
      const raw = (req.query ?? {}) as Record<string, unknown>;
      const query = Object.fromEntries(
        ['queue', 'by', 'q', 'batch', 'cursor'].map((k) => [k, typeof raw[k] === 'string' ? (raw[k] as string) : undefined]),
      ) as Record<string, string | undefined>;
      try {
        const { form, body } = await search(lookup, query);
        return render(reply, 200, form, body);
      } catch (err) {
        const p = problem(err);
        if (!p) throw err;
        return render(reply, p.status, { queue: query.queue, by: query.by, q: query.q }, `<p class="error" id="lookup-error">${esc(p.message)}</p>`);
      }
    });
  });
}
