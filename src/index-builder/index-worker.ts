/**
 * Entry point of an index thread: owns one `NamespacedIndex` and runs every USearch call (all of them
 * synchronous and CPU-bound) here, so the process's main thread keeps renewing BullMQ locks and
 * answering health checks. Started by `IndexThread` through `startWorkerScript` (see worker-script.ts).
 */
import { parentPort } from 'node:worker_threads';
import { NamespacedIndex } from './namespaced-index';
import type { IndexStats, ThreadEnvelope, ThreadReply, ThreadRequest } from './thread-protocol';

if (!parentPort) throw new Error('index-worker must run inside a worker thread');
const port = parentPort;
let index: NamespacedIndex | undefined;

function current(): NamespacedIndex {
  if (!index) throw new Error('index thread has no index yet: send create or open first');
  return index;
}

function handle(req: ThreadRequest): unknown {
  switch (req.op) {
    case 'create':
      index = new NamespacedIndex(req.settings);
      return { size: 0 };
    case 'open':
      index = NamespacedIndex.open(req.dir, req.settings, req.namespaces, req.mode, {
        expansionSearch: req.expansionSearch,
        exactFilterMax: req.exactFilterMax,
      });
      return { size: index.size };
    case 'apply':
      return current().apply(req.batch);
    case 'search':
      return current().search(req.vector, req.k, req.namespace);
    case 'searchBatch':
      return current().searchBatch(req.vectors, req.queries, req.threads);
    case 'save':
      return current().save(req.dir);
    case 'stats': {
      const i = current();
      const stats: IndexStats = {
        size: i.size,
        namespaces: i.namespaceSizes(),
        readOnly: i.readOnly,
        filterPaths: { ...i.filterPaths },
        rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      };
      return stats;
    }
    default:
      throw new Error(`unknown index thread request ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
}

port.on('message', ({ seq, request }: ThreadEnvelope) => {
  let reply: ThreadReply;
  try {
    reply = { seq, ok: true, result: handle(request) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { seq, ok: false, error: { name: e.name, message: e.message, stack: e.stack } };
  }
  port.postMessage(reply);
});
