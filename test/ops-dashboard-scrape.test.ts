import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { type RunningFleet, startFleet } from '../src/app/fleet';
import { WORKER_ROLES } from '../src/app/roles';
import { loadConfig } from '../src/config';
import { QUEUES } from '../src/contracts/queues';
import { createProducer } from '../src/producers';
import { createLogger } from '../src/telemetry';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';

/**
 * The Grafana dashboard checked against a real fleet after real use: every role and the API in this
 * process (as `fleet up` runs them), a little of everything done through the HTTP API, then one scrape of
 * /metrics. Each panel's query must find, for every metric it reads, a sample with the labels it filters
 * on — a panel that would show "No data" on a fleet that has done the work fails here.
 */
const DASHBOARD = path.join(__dirname, '..', 'ops', 'grafana', 'fleet-dashboard.json');
const TOKEN = 'dashboard-scrape-token-0123456789';
/** Small, so that a paused queue gets over it with a few jobs; the real work below never waits in numbers. */
const MAX_BACKLOG = 20;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus' text exposition format (what the scrape returns). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}
interface Selector {
  metric: string;
  matchers: Matcher[];
}

/**
 * The series selectors of a PromQL expression: each `fleet_…` name with its `{…}` matchers, if any.
 * Grafana's variables are what "All" sends: `$namespace` and `$queue` match anything (`.*`), as their
 * `allValue` says; `namespace` itself is a label Prometheus adds when it scrapes in Kubernetes.
 */
function selectorsIn(expr: string): Selector[] {
  const out: Selector[] = [];
  for (const m of expr.matchAll(/\b(fleet_[a-z0-9_]+)(?:\{([^}]*)\})?/g)) {
    const matchers: Matcher[] = [];
    for (const x of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      matchers.push({ label: x[1], op: x[2] as Matcher['op'], value: x[3].replace(/\$(namespace|queue)\b/g, '.*') });
    }
    out.push({ metric: m[1], matchers });
  }
  return out;
}

/** PromQL's label matching: a missing label is the empty string; regexes are anchored. */
function matches(sample: Sample, { metric, matchers }: Selector): boolean {
  if (sample.name !== metric) return false;
  return matchers.every(({ label, op, value }) => {
    const v = sample.labels[label] ?? '';
    if (op === '=') return v === value;
    if (op === '!=') return v !== value;
    const hit = new RegExp(`^(?:${value})$`).test(v);
    return op === '=~' ? hit : !hit;
  });
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('selectors of a dashboard query, matched as Prometheus matches them', () => {
  it('reads names, matchers and Grafana variables out of PromQL', () => {
    expect(
      selectorsIn('sum by (queue) (max by (queue, state) (fleet_queue_jobs{namespace=~"$namespace", queue=~"$queue", state=~"waiting|prioritized"}))'),
    ).toEqual([
      {
        metric: 'fleet_queue_jobs',
        matchers: [
          { label: 'namespace', op: '=~', value: '.*' },
          { label: 'queue', op: '=~', value: '.*' },
          { label: 'state', op: '=~', value: 'waiting|prioritized' },
        ],
      },
    ]);
    expect(selectorsIn('sum(fleet_pool_borrowed) / sum(fleet_pool_max{namespace=~"$namespace"})').map((s) => s.metric)).toEqual([
      'fleet_pool_borrowed',
      'fleet_pool_max',
    ]);
  });

  it('a sample without the filtered label value does not count', () => {
    const [sel] = selectorsIn('fleet_queue_jobs{state=~"waiting|prioritized"}');
    expect(matches({ name: 'fleet_queue_jobs', labels: { state: 'waiting' }, value: 0 }, sel)).toBe(true);
    expect(matches({ name: 'fleet_queue_jobs', labels: { state: 'waiting-children' }, value: 0 }, sel)).toBe(false);
    expect(matches({ name: 'fleet_queue_jobs', labels: {}, value: 0 }, sel)).toBe(false);
    const [neg] = selectorsIn('fleet_warehouse_call_duration_ms_bucket{operation!~"embed_texts|analyze_.*"}');
    expect(matches({ name: 'fleet_warehouse_call_duration_ms_bucket', labels: { operation: 'analyze_calls' }, value: 1 }, neg)).toBe(false);
    expect(matches({ name: 'fleet_warehouse_call_duration_ms_bucket', labels: { operation: 'get_deals' }, value: 1 }, neg)).toBe(true);
  });
});

describe('ops/grafana/fleet-dashboard.json against a running fleet', () => {
  let dir: string;
  let fleet: RunningFleet;
  let api: string;
  const prefix = uniquePrefix('dash');
  const post = async (route: string, body: unknown) => {
    const res = await fetch(`${api}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-dash-'));
    const config = loadConfig({
      REDIS_URL: testRedisUrl(),
      FLEET_QUEUE_PREFIX: prefix,
      CACHE_KEY_PREFIX: `${prefix}:cache`,
      PORT: '0',
      FLEET_API_TOKENS: TOKEN,
      FLEET_API_MAX_BACKLOG: String(MAX_BACKLOG),
      INDEX_SNAPSHOT_DIR: path.join(dir, 'index'),
      INDEX_SNAPSHOT_EVERY_MS: '1000',
      LOCAL_WAREHOUSE_LOGIN_LATENCY_MS: '0',
      LOCAL_WAREHOUSE_DEALS: '200',
      LOG_LEVEL: 'error',
    });
    fleet = await startFleet(config, {
      roles: WORKER_ROLES,
      embeddedRedis: false,
      embeddedWarehouse: true,
      logger: createLogger({ level: 'error', secrets: config.secrets }),
      api: { host: '127.0.0.1' },
    });
    api = fleet.apiUrl!;
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('after embeddings, a search, deal insights, a workflow and a 429, every panel query has data in one scrape', async () => {
    // Embeddings with index targets, then the same texts again (answered by the cache).
    const texts = ['renewal is at risk', 'pricing call went well', 'legal review is blocking the deal'];
    const index = texts.map((_, i) => ({ namespace: 'notes', id: `n-${i}` }));
    for (let round = 0; round < 2; round++) {
      const embedded = await post('/v1/embeddings?waitMs=20000', { texts, index });
      expect(embedded.status).toBe(200);
      expect((embedded.body.jobs as { state: string }[]).map((j) => j.state)).toEqual(['completed', 'completed', 'completed']);
    }

    // A search, once the builder's snapshot with those vectors is served.
    const found = await waitUntil(
      'a search to find the indexed notes',
      async () => {
        const r = await post('/v1/search', { text: 'the renewal is at risk', k: 3, namespace: 'notes' });
        return r.status === 200 && (r.body.hits as unknown[]).length === texts.length ? r : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect((found.body.hits as { id: string }[]).map((h) => h.id).sort()).toEqual(['n-0', 'n-1', 'n-2']);

    const deals = await post('/v1/deals/insights?waitMs=20000', { dealIds: ['D-1', 'D-2', 'D-999999'] });
    expect(deals.status).toBe(200);

    const started = await post('/v1/workflows', { question: 'Which deals are at risk this quarter?' });
    expect(started.status).toBe(202);
    await waitUntil(
      'the workflow to complete',
      async () => {
        const res = await fetch(`${api}${started.body.href}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const state = ((await res.json()) as { state: string }).state;
        if (state === 'failed') throw new Error('the workflow failed');
        return state === 'completed';
      },
      { timeoutMs: 60_000, everyMs: 100 },
    );

    // A 429: the deals queue paused with more jobs waiting than the API accepts.
    const connection = testRedis();
    const dealsQueue = new Queue(QUEUES.deals, { connection, prefix });
    const producer = createProducer({ connection, prefix });
    try {
      await dealsQueue.pause();
      await Promise.all(Array.from({ length: MAX_BACKLOG + 1 }, (_, i) => producer.dealInsights([`D-${10 + i}`])));
      const refused = await waitUntil('the API to refuse a deals enqueue', async () => {
        const r = await post('/v1/deals/insights', { dealIds: ['D-4'] });
        return r.status === 429 ? r : undefined;
      });
      expect(refused.status).toBe(429);
    } finally {
      await dealsQueue.resume();
      await producer.close();
      await dealsQueue.close();
      await connection.quit();
    }

    const res = await fetch(`${api}/metrics`);
    expect(res.status).toBe(200);
    const samples = parseExposition(await res.text());

    // Every panel's query finds data for each metric it reads, with the labels it filters on.
    expect(queries.length).toBeGreaterThan(20);
    for (const { panel, expr } of queries) {
      for (const sel of selectorsIn(expr)) {
        const found = samples.filter((s) => matches(s, sel)).length;
        expect({ panel, selector: `${sel.metric}${JSON.stringify(sel.matchers)}`, hasData: found > 0 }).toEqual({
          panel,
          selector: `${sel.metric}${JSON.stringify(sel.matchers)}`,
          hasData: true,
        });
      }
    }

    // The work done shows in the values, not only in the series being there.
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
    expect(value('fleet_index_vectors', { index_role: 'search' })).toBe(texts.length);
    expect(value('fleet_index_vectors', { index_role: 'builder' })).toBe(texts.length);
    expect(value('fleet_index_snapshot_version', { index_role: 'search' })).toBeGreaterThanOrEqual(1);
    expect(value('fleet_workflow_duration_ms_count', { workflow: 'deal-risk', outcome: 'ok' })).toBe(1);
    expect(value('fleet_api_backlog_rejections_total', { queue: 'deals' })).toBeGreaterThanOrEqual(1);
    expect(value('fleet_cache_hits_total', { cache: 'embeddings', tier: 'l1' })).toBeGreaterThanOrEqual(texts.length);
    expect(value('fleet_job_duration_ms_count', { queue: 'embeddings', outcome: 'ok' })).toBe(2 * texts.length);
    expect(value('fleet_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Counters that have not counted are there at 0, so rate() is 0 rather than "no data".
    for (const kind of ['warehouse_query', 'job', 'api_response']) {
      expect(samples.some((s) => s.name === 'fleet_slow_operations_total' && s.labels.kind === kind)).toBe(true);
    }
    expect(samples.find((s) => s.name === 'fleet_api_backlog_rejections_total' && s.labels.queue === 'embeddings')?.value).toBe(0);
    expect(samples.find((s) => s.name === 'fleet_warehouse_errors_total' && s.labels.operation === 'get_deals' && !s.labels.code)?.value).toBe(0);
  }, 180_000);
});
