/**
 * Issue #9, hostile input: ONE list of hostile cases, iterated over the three ways into the fleet by two test
 * files: test/hostile-input.test.ts (the HTTP API through fastify's `inject`, and the producer library
 * `createProducer`) and test/cli-hostile-input.test.ts (the CLI, `node bin/fleet.js enqueue …`: a process
 * per case, so it runs in `npm test` only, see jest.fast.config.js).
 *
 * Every case says, per surface, the input it sends or why the surface cannot carry it (`na`). A refused case
 * must get a 4xx (HTTP), a typed ValidationError (library) or a non-zero exit with a one-line message and no
 * stack trace (CLI), each naming the field and the problem. An accepted case is legitimate input that only
 * looks hostile (quotes, `$$`, right-to-left marks, `:` or integer-like keys): it is enqueued unchanged,
 * really embedded / looked up by workers against the local warehouse, and the warehouse is intact after.
 * At the end of each file the queues hold exactly the jobs of the accepted cases that file sent.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LocalWarehouse } from 'local-snowflake';
import { QUEUES, type QueueName } from '../../src/contracts/queues';
import { decodeVector } from '../../src/contracts/vector-codec';
import type { PooledWarehouse, WarehousePool } from '../../src/pool';
import { createProducer, idempotentJobId, type JobHandle, type Producer, type SearchRequestInput } from '../../src/producers';
import { testRedis, uniquePrefix } from './redis';
import { waitUntil } from './wait';
import { pooledClient, startTestWarehouse } from './warehouse';
import { type InProcessWorker, startDealWorker, startEmbeddingWorker } from './workers';

export type Surface = 'http' | 'library' | 'cli';
export const SURFACES: readonly Surface[] = ['http', 'library', 'cli'];

// ---- the list ---------------------------------------------------------------------------------------
export const TOKEN = 'hostile-test-token-0123456789';

/** The surface cannot carry this input (the reason is part of the table). */
interface NotApplicable {
  na: string;
}
export interface HttpInput {
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
export interface LibraryInput {
  call: (p: Producer, ctx: { probe: JobHandle<unknown> }) => Promise<unknown>;
  field?: string | string[];
  message?: RegExp;
  jobIds?: string[];
}
export interface CliInput {
  /** Arguments after `fleet enqueue`. */
  args: string[];
  /** 2 for a ValidationError, 1 for a usage error from commander. */
  exit?: number;
  field?: string | string[];
  message?: RegExp;
  jobIds?: string[];
}
export interface HostileCase {
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

export const CASES: HostileCase[] = [
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

// ---- what a file that sends the list shares ----------------------------------------------------------
interface Enqueued {
  queue: QueueName;
  id: string;
  via: string;
  text?: string;
  dealIds?: string[];
}

interface WarehouseSnapshot {
  counts: Record<string, number>;
  dealsDigest: string;
}
const TABLES = ['DEALS', 'GONG_CALLS', 'SLACK_MESSAGES', 'LINEAR_ISSUES'];

/** The cases a surface sends, as `it.each` rows. */
export function applicable<K extends Surface>(surface: K) {
  return CASES.filter((c) => !('na' in c[surface])).map((c) => [c.name, c] as const);
}

export const fields = (f: string | string[] | undefined) => (f === undefined ? [] : Array.isArray(f) ? f : [f]);

export interface HostileRun {
  /** This file's queue prefix: the queues it checks at the end hold only what it enqueued. */
  readonly prefix: string;
  /** Set in beforeAll. */
  readonly producer: Producer;
  /** Every job an accepted case (or the library's result() probe) enqueued; nothing else may be in the queues. */
  readonly enqueued: Enqueued[];
  /** Records a surface's outcome for the table printed at the end. */
  note(name: string, surface: Surface, outcome: string): void;
  /** Checks what an accepted surface enqueued: the payload unchanged, keyed ids BullMQ-safe; records it. */
  recordAccepted(c: HostileCase, surface: Surface, jobIds: string[], expectedIds?: string[]): Promise<void>;
  /**
   * The last describe block of the file: a real embedding and deal worker complete every accepted job, the
   * queues hold exactly those jobs (none from a refused case), the warehouse tables are intact.
   */
  describeAfterwards(): void;
}

/**
 * The set-up of a file that sends the list over `surfaces`: a producer on its own prefix, a local warehouse
 * (its tables read before anything is sent) and the outcome table printed for the CI log. Call it at the
 * top level of the file, before the file's own hooks, and end the file with `describeAfterwards()`.
 */
export function hostileInputRun(surfaces: readonly Surface[]): HostileRun {
  const outcomes = new Map<string, Partial<Record<Surface, string>>>();
  const enqueued: Enqueued[] = [];
  const prefix = uniquePrefix('hostile');
  let redis: Redis;
  let producer: Producer;
  let server: LocalWarehouse;
  let pool: WarehousePool;
  let warehouse: PooledWarehouse;
  let before: WarehouseSnapshot;

  async function snapshot(): Promise<WarehouseSnapshot> {
    const counts: Record<string, number> = {};
    for (const t of TABLES) counts[t] = Number((await warehouse.query<{ N: unknown }>(`SELECT COUNT(*) AS N FROM ${t}`))[0].N);
    const deals = await warehouse.query('SELECT * FROM DEALS ORDER BY ID');
    return { counts, dealsDigest: createHash('sha256').update(JSON.stringify(deals)).digest('hex') };
  }

  // ---- outcome table, printed once for the CI log ----
  afterAll(() => {
    const rows = CASES.map((c) => [c.name, c.verdict, ...surfaces.map((s) => ('na' in c[s] ? 'n/a' : (outcomes.get(c.name)?.[s] ?? 'NOT RUN')))]);
    const head = ['case', 'verdict', ...surfaces];
    const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((v, i) => v.padEnd(width[i])).join(' | ');
    console.log(
      [`hostile input (issue #9): case × ${surfaces.join(', ')} → outcome`, line(head), width.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join(
        '\n',
      ),
    );
  });

  beforeAll(async () => {
    redis = testRedis();
    producer = createProducer({ connection: redis, prefix, defaultJobOptions: { attempts: 1 } });
    server = await startTestWarehouse();
    ({ pool, warehouse } = pooledClient(server));
    before = await snapshot();
  });

  afterAll(async () => {
    await producer?.close();
    await redis?.quit();
    await pool?.close();
    await server?.close();
  });

  return {
    prefix,
    get producer() {
      return producer;
    },
    enqueued,
    note: (name, surface, outcome) => outcomes.set(name, { ...outcomes.get(name), [surface]: outcome }),

    async recordAccepted(c, surface, jobIds, expectedIds) {
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
    },

    describeAfterwards() {
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
          // At least one job per accepted case and surface of this file.
          const sent = CASES.filter((c) => c.verdict === 'accepted').flatMap((c) => surfaces.filter((s) => !('na' in c[s])));
          expect(sent.length).toBeGreaterThan(3);
          expect(enqueued.length).toBeGreaterThanOrEqual(sent.length);
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
    },
  };
}
