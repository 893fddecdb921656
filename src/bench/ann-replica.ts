/**
 * Child process of the ANN benchmark: one search replica as production runs it (`SearchService`,
 * mode `view`) over the benchmark's snapshot folder. Reports how long it took to serve (verify +
 * memory-map), its RSS before and after answering the queries, and their p50. Started by
 * `measureReplica` in ann.ts with its parameters in `ANN_REPLICA` (JSON); answers over IPC.
 */
import { readFileSync } from 'node:fs';
import IORedis from 'ioredis';
import { createSearchService } from '../index-builder/search-service';
import { percentile, round } from './stats';

async function main(): Promise<void> {
  const p = JSON.parse(process.env.ANN_REPLICA ?? '{}') as {
    redisUrl: string;
    prefix: string;
    snapshotDir: string;
    queriesFile: string;
    dims: number;
    k: number;
    namespace: string;
  };
  const buf = readFileSync(p.queriesFile);
  const queries = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const redis = new IORedis(p.redisUrl, { maxRetriesPerRequest: null });
  const service = createSearchService({ redis, prefix: p.prefix, snapshotDir: p.snapshotDir, pollMs: 0 });
  try {
    const t = performance.now();
    await service.start();
    await service.search(queries.slice(0, p.dims), p.k, p.namespace);
    const serve_ms = performance.now() - t;
    const rss_mb = Math.round(process.memoryUsage.rss() / 2 ** 20);
    const lat: number[] = [];
    for (let q = 0; q < queries.length / p.dims; q++) {
      const t0 = performance.now();
      await service.search(queries.slice(q * p.dims, (q + 1) * p.dims), p.k, p.namespace);
      lat.push(performance.now() - t0);
    }
    process.send?.({
      serve_ms: Math.round(serve_ms),
      rss_mb,
      rss_after_mb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      p50_ms: round(percentile(lat, 50), 3),
    });
  } finally {
    await service.close();
    redis.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`ann replica failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
