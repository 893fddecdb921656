/**
 * Issue #9, hostile input: ONE list of hostile cases, iterated over the three ways into the fleet: the HTTP
 * API (fastify, `inject`), the producer library (`createProducer`) and the CLI (`node bin/fleet.js enqueue …`,
 * needs `dist/`: `npm test` builds it first).
 *
 * Every case says, per surface, the input it sends or why the surface cannot carry it (`na`). A refused case
 * must get a 4xx (HTTP), a typed ValidationError (library) or a non-zero exit with a one-line message and no
 * stack trace (CLI), each naming the field and the problem. An accepted case is legitimate input that only
 * looks hostile (quotes, `$$`, right-to-left marks, `:` or integer-like keys): it is enqueued unchanged,
 * really embedded / looked up by workers against the local warehouse, and the warehouse is intact after.
 * At the end the queues hold exactly the jobs of the accepted cases.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { ValidationError } from '../src/contracts/errors';
import { QUEUES, type QueueName } from '../src/contracts/queues';
import { decodeVector } from '../src/contracts/vector-codec';
import { buildApi } from '../src/http';
import type { PooledWarehouse, WarehousePool } from '../src/pool';
import { createProducer, idempotentJobId, type JobHandle, type Producer, type SearchRequestInput } from '../src/producers';
import { type Finished, launchFleet } from './helpers/processes';
import { testRedis, testRedisUrl, uniquePrefix } from './helpers/redis';
import { waitUntil } from './helpers/wait';
import { pooledClient, startTestWarehouse } from './helpers/warehouse';
import { type InProcessWorker, startDealWorker, startEmbeddingWorker } from './helpers/workers';

// ---- outcome table, printed once for the CI log -----------------------------------------------------
type Surface = 'http' | 'library' | 'cli';
const SURFACES: readonly Surface[] = ['http', 'library', 'cli'];
const outcomes = new Map<string, Partial<Record<Surface, string>>>();
const note = (name: string, surface: Surface, outcome: string) => outcomes.set(name, { ...outcomes.get(name), [surface]: outcome });

afterAll(() => {
  const rows = CASES.map((c) => [c.name, c.verdict, ...SURFACES.map((s) => ('na' in c[s] ? 'n/a' : (outcomes.get(c.name)?.[s] ?? 'NOT RUN')))]);
  const head = ['case', 'verdict', ...SURFACES];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(width[i])).join(' | ');
  console.log(['hostile input (issue #9): case × surface → outcome', line(head), width.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n'));
});

// ---- the list ---------------------------------------------------------------------------------------
const TOKEN = 'hostile-test-token-0123456789';

/** The surface cannot carry this input (the reason is part of the table). */
interface NotApplicable {
  na: string;
}
interface HttpInput {
  method?: 'GET' | 'POST';
  url: string;
  /** A JSON body (sent with Content-Type: application/json). */
  json?: unknown;
  /** A body sent byte for byte (JSON that JSON.stringify cannot produce: 1e400, NaN, \ud800, broken JSON). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  auth?: 'none' | 'wrong';
  status: number;
  field?: string | string[];
  message?: RegExp;
  /** Accepted: job ids the response must carry (idempotency keys). */
  jobIds?: string[];
}
interface LibraryInput {
  call: (p: Producer, ctx: { probe: JobHandle<unknown> }) => Promise<unknown>;
  field?: string | string[];
  message?: RegExp;
  jobIds?: string[];
}
interface CliInput {
  /** Arguments after `fleet enqueue`. */
  args: string[];
  /** 2 for a ValidationError, 1 for a usage error from commander. */
  exit?: number;
  field?: string | string[];
  message?: RegExp;
  jobIds?: string[];
}
interface HostileCase {
  name: string;
  /** refused: 4xx / ValidationError / non-zero exit naming the problem. accepted: legitimate, enqueued unchanged. */
  verdict: 'refused' | 'accepted';
  /** Refused: the field every surface must name (a surface may override), and what it must say. */
  field?: string | string[];
  message?: RegExp;
  /** Accepted: the queue and the exact payload every surface must enqueue (the CLI sends the first text only). */
  queue?: QueueName;
  texts?: string[];
  dealIds?: string[];
  http: HttpInput | NotApplicable;
  library: LibraryInput | NotApplicable;
  cli: CliInput | NotApplicable;
}

const NA = {
  json: { na: 'takes JavaScript values, parses no JSON' },
  cliJson: { na: 'argv carries no JSON' },
  httpBody: { na: 'no HTTP body' },
  cliTypes: { na: 'argv is always strings' },
  cliNul: { na: 'argv strings are NUL-terminated: the OS cannot carry a NUL byte' },
  cliPriority: { na: 'no --priority option' },
  cliSearch: { na: 'no search command' },
  libAuth: { na: 'no API token: the caller holds the Redis connection' },
  cliAuth: { na: 'no API token: talks to Redis directly' },
  libLookup: { na: 'no job lookup by id (the BullMQ Queue it exposes answers undefined)' },
  cliLookup: { na: 'no job lookup command' },
  cliSameCheck: (other: string) => ({ na: `same argv path and check as "${other}"; one spawn covers it` }),
} satisfies Record<string, NotApplicable | ((s: string) => NotApplicable)>;

const SQL_TEXTS = ["'); DROP TABLE deals; --", '$$ DROP TABLE deals $$', "it\\'s \\' OR 1=1; DELETE FROM DEALS; --"];
const RTL_TEXTS = [
  '\u200F\u202Eexe.tnemyap\u202C renewal is at risk \u05E9\u05DC\u05D5\u05DD \u200E',
  '\u061C\u0645\u0631\u062D\u0628\u0627 pricing pushback \u2067isolated\u2069 \uD83D\uDC4D',
];
const HOSTILE_DEAL_IDS = ["'); DROP TABLE deals; --", '$$', "\\'", 'D:1', 'D-1\u202E', 'D-1\u0000'];
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `D-${from + i}`);
const BAD_ID = /must be 1-64 letters, digits, _ or -/;

const CASES: HostileCase[] = [
  // ---- empty and oversized ----
  {
    name: 'empty text',
    verdict: 'refused',
    field: 'text',
    message: /must not be empty or only whitespace/,
    http: { url: '/v1/embeddings', json: { text: '' }, status: 400 },
    library: { call: (p) => p.embed('') },
    cli: { args: ['embed', '--no-wait', ''] },
  },
  {
    name: 'whitespace-only text in a list',
    verdict: 'refused',
    field: 'texts[1]',
    message: /must not be empty or only whitespace/,
    http: { url: '/v1/embeddings', json: { texts: ['fine', ' \n\t\u00A0'] }, status: 400 },
    library: { call: (p) => p.embed(['fine', ' \n\t\u00A0']) },
    cli: NA.cliSameCheck('empty text'),
  },
  {
    name: 'text of 8,001 characters',
    verdict: 'refused',
    field: 'text',
    message: /at most 8000 characters \(it is not truncated\)/,
    http: { url: '/v1/embeddings', json: { text: 'x'.repeat(8001) }, status: 400 },
    library: { call: (p) => p.embed('x'.repeat(8001)) },
    cli: { args: ['embed', '--no-wait', 'x'.repeat(8001)] },
  },
  {
    name: 'text of exactly 8,000 characters',
    verdict: 'accepted',
    queue: QUEUES.embeddings,
    texts: [`${'boundary '.repeat(888)}12345678`],
    http: { url: '/v1/embeddings', json: { text: `${'boundary '.repeat(888)}12345678` }, status: 202 },
    library: { call: (p) => p.embed(`${'boundary '.repeat(888)}12345678`) },
    cli: NA.cliSameCheck('text of 8,001 characters'),
  },
  {
    name: 'body of 17 MB',
    verdict: 'refused',
    message: /larger than the limit of 1048576 bytes|at most 8000 characters/,
    http: { url: '/v1/embeddings', raw: `{"text":"${'y'.repeat(17 * 1024 * 1024)}"}`, status: 413 },
    library: { call: (p) => p.embed('y'.repeat(17 * 1024 * 1024)), field: 'text' },
    cli: { na: 'one argv string is limited to 128 KiB: the kernel refuses (E2BIG) before the CLI runs' },
  },
  {
    name: 'empty JSON body',
    verdict: 'refused',
    message: /body is empty/,
    http: { url: '/v1/embeddings', raw: '', status: 400 },
    library: NA.json,
    cli: NA.cliJson,
  },
  // ---- malformed JSON and wrong types ----
  {
    name: 'malformed JSON',
    verdict: 'refused',
    message: /not valid JSON/,
    http: { url: '/v1/embeddings', raw: '{"text": "a",}', status: 400 },
    library: NA.json,
    cli: NA.cliJson,
  },
  {
    name: 'NaN literal in JSON',
    verdict: 'refused',
    message: /not valid JSON/,
    http: { url: '/v1/embeddings', raw: '{"text": "a", "priority": NaN}', status: 400 },
    library: NA.json,
    cli: NA.cliJson,
  },
  {
    name: 'body is text/plain',
    verdict: 'refused',
    message: /as JSON with Content-Type: application\/json/,
    http: { url: '/v1/embeddings', raw: 'renewal is at risk', contentType: 'text/plain', status: 415 },
    library: NA.json,
    cli: NA.cliJson,
  },
  {
    name: 'text is a number',
    verdict: 'refused',
    field: 'text',
    message: /must be a string/,
    http: { url: '/v1/embeddings', json: { text: 42 }, status: 400 },
    library: { call: (p) => p.embed(42 as unknown as string) },
    cli: NA.cliTypes,
  },
  {
    name: 'a number in a list of texts',
    verdict: 'refused',
    field: 'texts[1]',
    message: /must be a string/,
    http: { url: '/v1/embeddings', json: { texts: ['ok', 7] }, status: 400 },
    library: { call: (p) => p.embed(['ok', 7 as unknown as string]) },
    cli: NA.cliTypes,
  },
  {
    name: 'dealIds is a string',
    verdict: 'refused',
    field: 'dealIds',
    message: /must be an array of deal ids/,
    http: { url: '/v1/deals/insights', json: { dealIds: 'D-1' }, status: 400 },
    library: { call: (p) => p.dealInsights('D-1' as unknown as string[]) },
    cli: NA.cliTypes,
  },
  {
    name: 'unknown field',
    verdict: 'refused',
    field: 'txt',
    message: /unknown field/,
    http: { url: '/v1/embeddings', json: { text: 'a', txt: 'b' }, status: 400 },
    library: { na: 'builds the payload itself from typed arguments' },
    cli: { na: 'commander refuses unknown options; the CLI builds the payload itself' },
  },
  {
    name: 'unknown model',
    verdict: 'refused',
    field: 'model',
    message: /must be one of e5-base-v2/,
    http: { url: '/v1/embeddings', json: { text: 'a', model: "e5'; DROP TABLE deals; --" }, status: 400 },
    library: { call: (p) => p.embed('a', { model: 'gpt-9' as never }) },
    cli: { args: ['embed', '--no-wait', '--model', 'gpt-9', 'a'] },
  },
  // ---- NaN, Infinity, negative numbers ----
  {
    name: 'priority NaN',
    verdict: 'refused',
    field: 'priority',
    message: /must be (a number|an integer from 1)/,
    http: { url: '/v1/embeddings', json: { text: 'a', priority: 'NaN' }, status: 400 },
    library: { call: (p) => p.embed('a', { priority: Number.NaN }) },
    cli: NA.cliPriority,
  },
  {
    name: 'priority Infinity (1e400)',
    verdict: 'refused',
    field: 'priority',
    message: /must be (a number|an integer from 1)/,
    http: { url: '/v1/deals/insights', raw: '{"dealIds": ["D-1"], "priority": 1e400}', status: 400 },
    library: { call: (p) => p.dealInsights(['D-1'], { priority: Number.POSITIVE_INFINITY }) },
    cli: NA.cliPriority,
  },
  {
    name: 'priority -1',
    verdict: 'refused',
    field: 'priority',
    message: /must be an integer from 1 \(highest\) to 2097152/,
    http: { url: '/v1/embeddings', json: { text: 'a', priority: -1 }, status: 400 },
    library: { call: (p) => p.workflow('which deals are at risk?', { priority: -1 }) },
    cli: NA.cliPriority,
  },
  {
    name: 'wait/timeout NaN',
    verdict: 'refused',
    message: /must be a number of milliseconds/,
    http: { url: '/v1/embeddings?waitMs=NaN', json: { text: 'a' }, status: 400, field: 'waitMs' },
    library: { call: (_p, { probe }) => probe.result({ timeoutMs: Number.NaN }), field: 'timeoutMs' },
    cli: { args: ['embed', '--timeout', 'NaN', 'a'], field: '--timeout' },
  },
  {
    name: 'wait/timeout Infinity (1e400)',
    verdict: 'refused',
    message: /must be a number of milliseconds/,
    http: { url: '/v1/embeddings?waitMs=1e400', json: { text: 'a' }, status: 400, field: 'waitMs' },
    library: { call: (_p, { probe }) => probe.result({ timeoutMs: Number.POSITIVE_INFINITY }), field: 'timeoutMs' },
    cli: { args: ['embed', '--timeout', '1e400', 'a'], field: '--timeout' },
  },
  {
    name: 'wait/timeout -1',
    verdict: 'refused',
    message: /must be (from 0 to 30000|a number of milliseconds from 1)/,
    http: { url: '/v1/embeddings?waitMs=-1', json: { text: 'a' }, status: 400, field: 'waitMs' },
    library: { call: (_p, { probe }) => probe.result({ timeoutMs: -1 }), field: 'timeoutMs' },
    cli: { args: ['deals', '--timeout', '-1', 'D-1'], field: '--timeout' },
  },
  {
    name: 'wait/timeout empty',
    verdict: 'refused',
    message: /must be a number of milliseconds/,
    http: { url: '/v1/embeddings?waitMs=', json: { text: 'a' }, status: 400, field: 'waitMs' },
    library: { call: (_p, { probe }) => probe.result({ timeoutMs: '' as unknown as number }), field: 'timeoutMs' },
    cli: NA.cliSameCheck('wait/timeout NaN'),
  },
  {
    name: 'search k NaN',
    verdict: 'refused',
    field: 'k',
    message: /must be a number/,
    http: { url: '/v1/search', json: { text: 'renewal', k: 'NaN' }, status: 400 },
    library: { call: (p) => p.search({ text: 'renewal', k: Number.NaN }) },
    cli: NA.cliSearch,
  },
  {
    name: 'search k Infinity (1e400)',
    verdict: 'refused',
    field: 'k',
    message: /must be a number/,
    http: { url: '/v1/search', raw: '{"text": "renewal", "k": 1e400}', status: 400 },
    library: { call: (p) => p.search({ text: 'renewal', k: Number.POSITIVE_INFINITY }) },
    cli: NA.cliSearch,
  },
  {
    name: 'search k -1',
    verdict: 'refused',
    field: 'k',
    message: /must be at least 1/,
    http: { url: '/v1/search', json: { text: 'renewal', k: -1 }, status: 400 },
    library: { call: (p) => p.search({ text: 'renewal', k: -1 }) },
    cli: NA.cliSearch,
  },
  {
    name: 'search vector with NaN/Infinity',
    verdict: 'refused',
    field: 'vector',
    message: /a list of 1 to 4096 finite numbers/,
    http: { url: '/v1/search', raw: '{"vector": [0.5, 1e400], "k": 3}', status: 400 },
    library: { call: (p) => p.search({ vector: [0.5, Number.NaN], k: 3 } as SearchRequestInput) },
    cli: NA.cliSearch,
  },
  // ---- NUL bytes, lone surrogates, right-to-left marks, SQL ----
  {
    name: 'NUL byte in text',
    verdict: 'refused',
    field: 'text',
    message: /must not contain NUL bytes/,
    http: { url: '/v1/embeddings', json: { text: 'renewal\u0000; DROP TABLE deals' }, status: 400 },
    library: { call: (p) => p.embed('renewal\u0000; DROP TABLE deals') },
    cli: NA.cliNul,
  },
  {
    name: 'lone surrogate in text',
    verdict: 'refused',
    field: 'text',
    message: /lone surrogate/,
    http: { url: '/v1/embeddings', raw: '{"text": "renewal \\ud800 at risk"}', status: 400 },
    library: { call: (p) => p.embed('renewal \uD800 at risk') },
    cli: { na: 'argv is UTF-8 bytes: a lone surrogate cannot be encoded (it arrives as U+FFFD, valid text)' },
  },
  {
    name: 'right-to-left marks and emoji in text',
    verdict: 'accepted',
    queue: QUEUES.embeddings,
    texts: RTL_TEXTS,
    http: { url: '/v1/embeddings', json: { texts: RTL_TEXTS }, status: 202 },
    library: { call: (p) => p.embed(RTL_TEXTS) },
    cli: { args: ['embed', '--no-wait', RTL_TEXTS[0]] },
  },
  {
    name: "SQL-injection text (', $$, \\')",
    verdict: 'accepted',
    queue: QUEUES.embeddings,
    texts: SQL_TEXTS,
    http: { url: '/v1/embeddings', json: { texts: SQL_TEXTS }, status: 202 },
    library: { call: (p) => p.embed(SQL_TEXTS) },
    cli: { args: ['embed', '--no-wait', SQL_TEXTS[0]] },
  },
  {
    name: "hostile deal ids (SQL, $$, \\', :, RTL, NUL)",
    verdict: 'refused',
    field: HOSTILE_DEAL_IDS.map((_, i) => `dealIds[${i}]`),
    message: BAD_ID,
    http: { url: '/v1/deals/insights', json: { dealIds: HOSTILE_DEAL_IDS }, status: 400 },
    library: { call: (p) => p.dealInsights(HOSTILE_DEAL_IDS) },
    // the same ids minus the NUL one, which argv cannot carry
    cli: { args: ['deals', '--no-wait', ...HOSTILE_DEAL_IDS.slice(0, -1)], field: HOSTILE_DEAL_IDS.slice(0, -1).map((_, i) => `dealIds[${i}]`) },
  },
  // ---- ids with ':' or integer-like ids ----
  {
    name: "idempotency key with ':'",
    verdict: 'accepted',
    queue: QUEUES.embeddings,
    texts: ['a note keyed tenant:7:note'],
    http: {
      url: '/v1/embeddings',
      headers: { 'idempotency-key': 'tenant:7:note:http' },
      json: { text: 'a note keyed tenant:7:note' },
      status: 202,
      jobIds: [idempotentJobId(QUEUES.embeddings, 'tenant:7:note:http')],
    },
    library: {
      call: (p) => p.embed('a note keyed tenant:7:note', { idempotencyKey: 'tenant:7:note:lib' }),
      jobIds: [idempotentJobId(QUEUES.embeddings, 'tenant:7:note:lib')],
    },
    cli: {
      args: ['embed', '--no-wait', '--idempotency-key', 'tenant:7:note:cli', 'a note keyed tenant:7:note'],
      jobIds: [idempotentJobId(QUEUES.embeddings, 'tenant:7:note:cli')],
    },
  },
  {
    name: 'integer-like deal ids and idempotency key',
    verdict: 'accepted',
    queue: QUEUES.deals,
    dealIds: ['42', '007', 'D-1'],
    http: {
      url: '/v1/deals/insights',
      headers: { 'idempotency-key': '42' },
      json: { dealIds: ['42', '007', 'D-1'] },
      status: 202,
      jobIds: [idempotentJobId(QUEUES.deals, '42')],
    },
    library: { call: (p) => p.dealInsights(['42', '007', 'D-1'], { idempotencyKey: '43' }), jobIds: [idempotentJobId(QUEUES.deals, '43')] },
    cli: { args: ['deals', '--no-wait', '--idempotency-key', '44', '42', '007', 'D-1'], jobIds: [idempotentJobId(QUEUES.deals, '44')] },
  },
  {
    name: 'idempotency key empty or over 512 characters',
    verdict: 'refused',
    message: /1-512 characters/,
    http: { url: '/v1/embeddings', headers: { 'idempotency-key': 'k'.repeat(513) }, json: { text: 'a' }, status: 400, field: 'Idempotency-Key' },
    library: { call: (p) => p.dealInsights(['D-1'], { idempotencyKey: '' }), field: 'idempotencyKey' },
    cli: { args: ['embed', '--no-wait', '--idempotency-key', '', 'a'], field: 'idempotencyKey' },
  },
  {
    name: "job lookup: id with ':'",
    verdict: 'refused',
    field: 'id',
    message: /must not contain whitespace or ":"/,
    http: { method: 'GET', url: '/v1/jobs/embeddings/1:2', status: 400 },
    library: NA.libLookup,
    cli: NA.cliLookup,
  },
  {
    name: 'job lookup: SQL-looking id',
    verdict: 'refused',
    field: 'id',
    message: /must not contain whitespace or ":"/,
    http: { method: 'GET', url: `/v1/jobs/deals/${encodeURIComponent("'); DROP TABLE deals; --")}`, status: 400 },
    library: NA.libLookup,
    cli: NA.cliLookup,
  },
  // ---- batches ----
  {
    name: 'duplicate ids in one deal batch',
    verdict: 'refused',
    field: 'dealIds[2]',
    message: /duplicate id "D-1"/,
    http: { url: '/v1/deals/insights', json: { dealIds: ['D-1', 'D-2', 'D-1'] }, status: 400 },
    library: { call: (p) => p.dealInsights(['D-1', 'D-2', 'D-1']) },
    cli: { args: ['deals', '--no-wait', 'D-1', 'D-2', 'D-1'] },
  },
  {
    name: '1,001-id deal batch',
    verdict: 'refused',
    field: 'dealIds',
    message: /must contain at most 1000 ids/,
    http: { url: '/v1/deals/insights', json: { dealIds: ids(1001) }, status: 400 },
    library: { call: (p) => p.dealInsights(ids(1001)) },
    cli: { args: ['deals', '--no-wait', ...ids(1001)] },
  },
  {
    name: '1,000-id deal batch',
    verdict: 'accepted',
    queue: QUEUES.deals,
    dealIds: ids(1000, 1),
    http: { url: '/v1/deals/insights', json: { dealIds: ids(1000, 1) }, status: 202 },
    library: { call: (p) => p.dealInsights(ids(1000, 1)) },
    cli: NA.cliSameCheck('1,001-id deal batch'),
  },
  {
    name: 'empty deal batch',
    verdict: 'refused',
    field: 'dealIds',
    message: /must contain at least one id/,
    http: { url: '/v1/deals/insights', json: { dealIds: [] }, status: 400 },
    library: { call: (p) => p.dealInsights([]) },
    cli: { args: ['deals', '--no-wait'], exit: 1, field: [], message: /missing required argument 'ids'/ },
  },
  // ---- unknown queues and job ids ----
  {
    name: 'unknown queue',
    verdict: 'refused',
    message: /unknown (queue "nope"; known queues: embeddings, deals|command 'nope')/,
    http: { method: 'GET', url: '/v1/jobs/nope/1', status: 404 },
    library: { call: async (p) => p.queue('nope' as QueueName), field: 'queue' },
    cli: { args: ['nope', 'renewal'], exit: 1 },
  },
  {
    name: 'unknown (integer-like) job id',
    verdict: 'refused',
    message: /no job "999999" in queue embeddings/,
    http: { method: 'GET', url: '/v1/jobs/embeddings/999999', status: 404 },
    library: NA.libLookup,
    cli: NA.cliLookup,
  },
  // ---- auth ----
  {
    name: 'missing auth',
    verdict: 'refused',
    message: /missing Authorization: Bearer <token> header/,
    http: { url: '/v1/embeddings', json: { text: 'a' }, auth: 'none', status: 401 },
    library: NA.libAuth,
    cli: NA.cliAuth,
  },
  {
    name: 'wrong auth',
    verdict: 'refused',
    message: /the bearer token is not valid for this API/,
    http: { method: 'GET', url: '/v1/jobs/embeddings/1', auth: 'wrong', status: 401 },
    library: NA.libAuth,
    cli: NA.cliAuth,
  },
];

// ---- shared state -----------------------------------------------------------------------------------
const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(node:)/m;

interface Enqueued {
  queue: QueueName;
  id: string;
  via: string;
  text?: string;
  dealIds?: string[];
}
/** Every job an accepted case (or the library's result() probe) enqueued; nothing else may be in the queues. */
const enqueued: Enqueued[] = [];

const prefix = uniquePrefix('hostile');
let redis: Redis;
let producer: Producer;
let app: FastifyInstance;
let server: LocalWarehouse;
let pool: WarehousePool;
let warehouse: PooledWarehouse;
let before: WarehouseSnapshot;

interface WarehouseSnapshot {
  counts: Record<string, number>;
  dealsDigest: string;
}
const TABLES = ['DEALS', 'GONG_CALLS', 'SLACK_MESSAGES', 'LINEAR_ISSUES'];
async function snapshot(): Promise<WarehouseSnapshot> {
  const counts: Record<string, number> = {};
  for (const t of TABLES) counts[t] = Number((await warehouse.query<{ N: unknown }>(`SELECT COUNT(*) AS N FROM ${t}`))[0].N);
  const deals = await warehouse.query('SELECT * FROM DEALS ORDER BY ID');
  return { counts, dealsDigest: createHash('sha256').update(JSON.stringify(deals)).digest('hex') };
}

beforeAll(async () => {
  redis = testRedis();
  producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
  app = await buildApi({
    producer,
    queues: [producer.queue(QUEUES.embeddings), producer.queue(QUEUES.deals), producer.queue(QUEUES.search)],
    tokens: [TOKEN],
    board: false,
    // What `fleet api` does without a co-located search role (src/app/api-role.ts): hand the body to
    // producer.search, which validates it before anything is enqueued.
    search: async (body, ctx) => {
      const handle = await producer.search((body ?? {}) as SearchRequestInput, { trace: ctx.trace });
      return { queue: handle.queue, id: handle.id };
    },
  });
  server = await startTestWarehouse();
  ({ pool, warehouse } = pooledClient(server));
  before = await snapshot();
});

afterAll(async () => {
  await app?.close();
  await producer?.close();
  await redis?.quit();
  await pool?.close();
  await server?.close();
});

const fields = (f: string | string[] | undefined) => (f === undefined ? [] : Array.isArray(f) ? f : [f]);

/** Checks what an accepted surface enqueued: the payload unchanged, keyed ids BullMQ-safe; records it. */
async function recordAccepted(c: HostileCase, surface: Surface, jobIds: string[], expectedIds?: string[]): Promise<void> {
  const texts = surface === 'cli' ? c.texts?.slice(0, 1) : c.texts;
  expect(jobIds).toHaveLength(texts ? texts.length : 1);
  if (expectedIds) {
    expect(jobIds).toEqual(expectedIds);
    for (const id of jobIds) {
      expect(id).not.toContain(':');
      expect(Number.isInteger(Number(id))).toBe(false);
    }
  }
  for (const [i, id] of jobIds.entries()) {
    const job = await producer.queue(c.queue!).getJob(id);
    expect(job).toBeDefined();
    if (texts) expect(job!.data.text).toBe(texts[i]);
    if (c.dealIds) expect(job!.data.dealIds).toEqual(c.dealIds);
    enqueued.push({ queue: c.queue!, id, via: `${surface}: ${c.name}`, text: texts?.[i], dealIds: c.dealIds });
  }
}

function applicable<K extends Surface>(surface: K) {
  return CASES.filter((c) => !('na' in c[surface])).map((c) => [c.name, c] as const);
}

// ---- the list itself ----------------------------------------------------------------------------------
describe('the hostile list', () => {
  it('covers every item of issue #9, each surface either sends an input or says why it cannot', () => {
    const names = CASES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of CASES) {
      for (const s of SURFACES) {
        const input = c[s];
        if ('na' in input) expect(input.na.length).toBeGreaterThan(10);
      }
      if (c.verdict === 'refused') expect((c.http as HttpInput).message ?? c.message).toBeInstanceOf(RegExp);
      if (c.verdict === 'accepted') expect(c.queue).toBeDefined();
    }
    const cli = CASES.filter((c) => !('na' in c.cli));
    expect(cli.length).toBeLessThanOrEqual(16); // each spawn costs about a second
  });
});

// ---- surface 1: HTTP ----------------------------------------------------------------------------------
describe('hostile input over HTTP (fastify, real Redis)', () => {
  it.each(applicable('http'))('%s', async (name, c) => {
    const h = c.http as HttpInput;
    const headers: Record<string, string> = { ...h.headers };
    if (h.auth === 'wrong') headers.authorization = `Bearer ${TOKEN.replace(/.$/, 'X')}`;
    else if (h.auth !== 'none') headers.authorization = `Bearer ${TOKEN}`;
    let payload: string | undefined;
    if (h.raw !== undefined) {
      payload = h.raw;
      headers['content-type'] = h.contentType ?? 'application/json';
    } else if (h.json !== undefined) {
      payload = JSON.stringify(h.json);
      headers['content-type'] = 'application/json';
    }
    const res = await app.inject({ method: h.method ?? 'POST', url: h.url, headers, ...(payload !== undefined ? { payload } : {}) });
    const body = res.json();
    expect({ status: res.statusCode, body }).toMatchObject({ status: h.status });

    if (c.verdict === 'accepted') {
      await recordAccepted(
        c,
        'http',
        body.jobs.map((j: { id: string }) => j.id),
        h.jobIds,
      );
      note(name, 'http', `${res.statusCode} (${body.jobs.length} job${body.jobs.length > 1 ? 's' : ''})`);
      return;
    }
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(body.error.message).toMatch(h.message ?? c.message!);
    const named = fields(h.field ?? c.field);
    for (const f of named) {
      const issue = body.error.issues?.find((i: { path: string }) => i.path === f);
      expect({ field: f, issue }).toEqual({ field: f, issue: { path: f, message: expect.stringMatching(h.message ?? c.message!) } });
    }
    expect(res.body).not.toMatch(/\bat .+\.[jt]s:\d+/); // no stack in the body
    note(name, 'http', `${res.statusCode} ${body.error.code}${named.length ? ` ${named[0]}${named.length > 1 ? ` +${named.length - 1}` : ''}` : ''}`);
  });
});

// ---- surface 2: the producer library ------------------------------------------------------------------
describe('hostile input through the producer library', () => {
  let probe: JobHandle<unknown>;
  beforeAll(async () => {
    // A real job whose result() is asked for with hostile timeouts (it is embedded like the others).
    const text = 'a job whose result() is awaited with hostile timeouts';
    probe = await producer.embed(text);
    enqueued.push({ queue: QUEUES.embeddings, id: probe.id, via: 'library: result() probe', text });
  });

  it.each(applicable('library'))('%s', async (name, c) => {
    const l = c.library as LibraryInput;
    const outcome = await l.call(producer, { probe }).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    if (c.verdict === 'accepted') {
      if (!outcome.ok) throw outcome.error;
      const handles = (Array.isArray(outcome.value) ? outcome.value : [outcome.value]) as JobHandle<unknown>[];
      expect(handles.every((hd) => hd.queue === c.queue)).toBe(true);
      await recordAccepted(
        c,
        'library',
        handles.map((hd) => hd.id),
        l.jobIds,
      );
      note(name, 'library', `enqueued (${handles.length} job${handles.length > 1 ? 's' : ''})`);
      return;
    }
    expect(outcome.ok).toBe(false);
    const err = (outcome as { error: ValidationError }).error;
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(l.message ?? c.message!);
    const named = fields(l.field ?? c.field);
    expect(named.length).toBeGreaterThan(0);
    for (const f of named) expect(err.issues).toContainEqual({ path: f, message: expect.stringMatching(l.message ?? c.message!) });
    note(name, 'library', `ValidationError ${named[0]}${named.length > 1 ? ` +${named.length - 1}` : ''}`);
  });
});

// ---- surface 3: the CLI -------------------------------------------------------------------------------
type CliRun = Finished;
/** `fleet enqueue …args` to its end (SIGKILLed after 45 s, which the run's `signal` shows). */
function runCli(args: string[]): Promise<CliRun> {
  return launchFleet(['enqueue', ...args], { env: { REDIS_URL: testRedisUrl(), FLEET_QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' } }).finished(45_000);
}

describe('hostile input through the CLI (node bin/fleet.js enqueue …)', () => {
  const runs = new Map<string, CliRun>();
  beforeAll(async () => {
    // All spawns up front, a few at a time (each one loads the CLI: about a second of CPU).
    const todo = applicable('cli');
    const next = async () => {
      for (let item = todo.shift(); item; item = todo.shift()) runs.set(item[0], await runCli((item[1].cli as CliInput).args));
    };
    await Promise.all(Array.from({ length: 3 }, next));
  }, 180_000);

  it.each(applicable('cli'))('%s', async (name, c) => {
    const cl = c.cli as CliInput;
    const run = runs.get(name)!;
    expect(run.signal).toBeNull();
    expect(run.stderr).not.toMatch(STACK_TRACE);
    if (c.verdict === 'accepted') {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^enqueued /) });
      const ids = [...run.stderr.matchAll(/^enqueued (\w+)\/(\S+)$/gm)].map((m) => {
        expect(m[1]).toBe(c.queue);
        return m[2];
      });
      await recordAccepted(c, 'cli', ids, cl.jobIds);
      note(name, 'cli', `exit 0, enqueued ${ids.length}`);
      return;
    }
    const message = cl.message ?? c.message!;
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: cl.exit ?? 2, stderr: expect.stringMatching(message) });
    for (const f of fields(cl.field ?? c.field)) expect(run.stderr).toContain(`${f}: `);
    expect(run.stderr).not.toMatch(/^enqueued /m); // the "enqueued <queue>/<id>" line (the help text may say "nothing was enqueued")
    expect(run.stdout).toBe('');
    note(
      name,
      'cli',
      `exit ${run.code}: ${run.stderr
        .split('\n')[0]
        .replace(/^(fleet enqueue: invalid input: |error: )/, '')
        .slice(0, 48)}`,
    );
  });
});

// ---- accepted hostile input is processed, refused input left no trace ---------------------------------
describe('afterwards: accepted jobs complete, nothing else was enqueued, the warehouse is intact', () => {
  let workers: InProcessWorker[] = [];
  afterAll(async () => {
    for (const w of workers) await w.close();
  });

  /** The job's return value once it completed (state read every 100 ms; a failure, or 60 s without either, throws). */
  async function completed(e: Enqueued): Promise<any> {
    const job = await waitUntil(
      `${e.via} (${e.queue}/${e.id}) to complete`,
      async () => {
        // state first, then the job: a job read before its state could predate its return value
        const state = await producer.queue(e.queue).getJobState(e.id);
        const job = (await producer.queue(e.queue).getJob(e.id))!;
        if (state === 'failed') throw new Error(`${e.via} (${e.queue}/${e.id}) did not complete: ${state} ${job.failedReason ?? ''}`);
        return state === 'completed' && job;
      },
      { timeoutMs: 60_000, everyMs: 100 },
    );
    return job.returnvalue;
  }

  it('a real embedding worker and deal worker complete every accepted job (texts bound, not spliced)', async () => {
    expect(enqueued.length).toBeGreaterThan(10);
    workers = [startEmbeddingWorker(warehouse, prefix), startDealWorker(warehouse, prefix)];

    await Promise.all(
      enqueued.map(async (e) => {
        const result = await completed(e);
        if (e.queue === QUEUES.embeddings) {
          expect(result).toMatchObject({ dims: 768, model: 'e5-base-v2' });
          const v = decodeVector(result.vector);
          expect(v).toHaveLength(768);
          expect(v.every(Number.isFinite)).toBe(true);
        } else {
          expect(result.requested).toBe(e.dealIds!.length);
          expect(result.deals.map((d: { id: string }) => d.id)).toEqual(e.dealIds);
          if (e.dealIds!.includes('42')) expect(result.deals[0]).toEqual({ id: '42', found: false, error: 'not found' });
        }
      }),
    );
  }, 120_000);

  it('the queues hold exactly the jobs of the accepted cases (none from a refused one)', async () => {
    for (const name of [QUEUES.embeddings, QUEUES.deals, QUEUES.search] as QueueName[]) {
      const jobs = await producer.queue(name).getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'waiting-children']);
      const expected = [...new Set(enqueued.filter((e) => e.queue === name).map((e) => e.id))].sort();
      expect({ queue: name, ids: jobs.map((j) => j.id!).sort() }).toEqual({ queue: name, ids: expected });
      expect(jobs.every((j) => j.finishedOn && !j.failedReason)).toBe(true);
    }
    // and no queue was opened for an unknown name
    const keys = await redis.keys(`${prefix}:*`);
    const queueNames = new Set(keys.map((k) => k.slice(prefix.length + 1).split(':')[0]));
    expect([...queueNames].filter((q) => !Object.values(QUEUES).includes(q as QueueName))).toEqual([]);
  });

  it('the warehouse tables are intact (row counts and the DEALS rows unchanged)', async () => {
    const after = await snapshot();
    expect(after).toEqual(before);
    expect(before.counts.DEALS).toBe(500);
  });
});
