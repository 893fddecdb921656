import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { FastifyAdapter as FastifyAdapterClass } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { JOB_LOOKUP_PAGE } from '../contracts/batch-log';
import { shardOfPrefix } from '../contracts/shards';
import { nativeRequire } from '../runtime/native-require';
import type { Authenticator, Principal } from './auth';
import { mountJobLookupPage } from './job-lookup-page';

export interface BoardOptions {
  /** Where the full board (retry, remove, pause...) is mounted. Default `/admin/queues`. */
  basePath?: string;
  /**
   * Where the read-only board is mounted: every queue adapter is in `readOnlyMode`, and every request
   * other than GET/HEAD is refused before it reaches Bull Board. Default `/admin/queues-readonly`.
   * Viewers who open `basePath` are redirected here.
   */
  readOnlyBasePath?: string;
  /** Title shown in the board's header. Default `warehouse-fleet`. */
  title?: string;
}

export interface MountBoardOptions extends BoardOptions {
  queues: readonly Queue[];
  auth: Authenticator;
  logger?: Logger;
}

const REALM = 'warehouse-fleet board';

/** Loaded like fastify itself: it needs @fastify/static 10 (see src/runtime/native-require.ts). */
function loadFastifyAdapter(): typeof FastifyAdapterClass {
  return nativeRequire<typeof import('@bull-board/fastify')>('@bull-board/fastify').FastifyAdapter;
}

function checkPath(name: string, p: string): string {
  if (typeof p !== 'string' || !/^\/[A-Za-z0-9/_-]*[A-Za-z0-9_-]$/.test(p)) {
    throw new TypeError(`option \`board.${name}\` must be an absolute path like /admin/queues (no trailing slash), got ${JSON.stringify(p)}`);
  }
  return p;
}

/**
 * Embedding results carry a 4 KB base64 vector that would fill the job card; the board shows its size
 * instead (GET /v1/jobs/:queue/:id still returns the whole result).
 */
function shortenVectors(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = (value as { vector?: unknown }).vector;
  if (typeof v !== 'string' || v.length <= 64) return value;
  return { ...(value as object), vector: `${v.slice(0, 24)}… (${Math.floor((v.length * 3) / 4)} bytes, base64 float32)` };
}

function challenge(reply: FastifyReply, auth: Authenticator, message: string) {
  // With Basic configured, browsers show their login dialog; API clients send a bearer token.
  reply.header('www-authenticate', auth.acceptsBasic ? `Basic realm="${REALM}", charset="UTF-8"` : `Bearer realm="${REALM}"`);
  return reply.code(401).send({ error: { code: 'unauthorized', message } });
}

/**
 * Mounts Bull Board twice: the full board for admins (API tokens or the admin's Basic credentials)
 * and a read-only board for viewers (viewer Basic credentials or viewer tokens; admins may use it too),
 * and next to them the job lookup page (`JOB_LOOKUP_PAGE`, src/http/job-lookup-page.ts) for both.
 * Bull Board itself has no authentication; each mount is wrapped in its own fastify scope whose
 * onRequest hook authenticates every request: pages, static files and the board's JSON API.
 *
 * Read-only is enforced twice: Bull Board's per-queue `readOnlyMode` (its API answers 405 to retry,
 * clean, pause... and the UI hides those buttons), and our hook, which refuses every method but
 * GET/HEAD on the read-only mount with 403.
 */
export async function mountBoard(app: FastifyInstance, opts: MountBoardOptions): Promise<{ basePath: string; readOnlyBasePath: string }> {
  const basePath = checkPath('basePath', opts.basePath ?? '/admin/queues');
  const readOnlyBasePath = checkPath('readOnlyBasePath', opts.readOnlyBasePath ?? '/admin/queues-readonly');
  if (basePath === readOnlyBasePath) throw new TypeError('options `board.basePath` and `board.readOnlyBasePath` must differ');
  const title = opts.title ?? 'warehouse-fleet';
  const { auth, logger } = opts;

  const principalOf = (req: FastifyRequest): Principal | undefined => auth.authenticate(req.headers.authorization);

  const FastifyAdapter = loadFastifyAdapter();
  const mount = async (path: string, readOnly: boolean, guard: (req: FastifyRequest, reply: FastifyReply, who: Principal) => FastifyReply | undefined) => {
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(path);
    createBullBoard({
      queues: opts.queues.map((q) => {
        // A shard after the first is a queue of the same name under its own prefix: the board names it apart
        // (`s2.embeddings`, shown as "embeddings · shard 2"), as a job's id names its shard (`s2.…`).
        const shard = shardOfPrefix(q.opts.prefix ?? '', q.name);
        const adapter = new BullMQAdapter(q, {
          readOnlyMode: readOnly,
          allowRetries: !readOnly,
          displayName: shard === 0 ? q.name : `${q.name} · shard ${shard}`,
          ...(shard === 0 ? {} : { prefix: `s${shard}.` }),
        });
        adapter.setFormatter('returnValue', shortenVectors);
        return adapter;
      }),
      // @bull-board/fastify 9.10.1 declares its own nested copy of @bull-board/api's types; the adapter is the same at runtime.
      serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
      options: { uiConfig: { boardTitle: readOnly ? `${title} (read-only)` : title, hideDocsLink: true } },
    });
    await app.register(async (scope) => {
      scope.addHook('onRequest', async (req, reply) => {
        const who = principalOf(req);
        if (!who) {
          logger?.debug({ path: req.url.split('?')[0], hasCredentials: Boolean(req.headers.authorization) }, 'board: unauthenticated request refused');
          return challenge(reply, auth, 'Bull Board needs credentials: Basic (admin or viewer user) or a bearer token');
        }
        const refused = guard(req, reply, who);
        if (refused) return refused;
        if (req.method !== 'GET' && req.method !== 'HEAD')
          logger?.info({ user: who.name, method: req.method, path: req.url.split('?')[0] }, 'board: change requested');
        return undefined;
      });
      await scope.register(serverAdapter.registerPlugin() as Parameters<FastifyInstance['register']>[0], { prefix: path });
    });
  };

  await mount(basePath, false, (req, reply, who) => {
    if (who.role === 'admin') return undefined;
    const rest = req.url.slice(basePath.length);
    if ((req.method === 'GET' || req.method === 'HEAD') && !rest.startsWith('/api/')) {
      return reply.redirect(`${readOnlyBasePath}${rest}`, 302);
    }
    return reply.code(403).send({ error: { code: 'forbidden', message: `viewers have read-only access: use ${readOnlyBasePath}` } });
  });
  await mount(readOnlyBasePath, true, (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return undefined;
    return reply.code(403).send({ error: { code: 'forbidden', message: `the board at ${readOnlyBasePath} is read-only; admins use ${basePath}` } });
  });
  // The page that finds jobs and opens batches: read-only, so any board principal may use it.
  await mountJobLookupPage(app, {
    path: JOB_LOOKUP_PAGE,
    queues: opts.queues,
    boardPath: basePath,
    refuse: (req, reply) => (principalOf(req) ? undefined : challenge(reply, auth, 'the job lookup page needs the same credentials as Bull Board')),
  });
  return { basePath, readOnlyBasePath };
}
