import { randomUUID } from 'node:crypto';
import type snowflake from 'snowflake-sdk';
import { type LocalWarehouse, startLocalWarehouse } from '../src';
import { embedText } from '../src/embedder';
import { chunkLimits, MAX_CHUNK_FILE_BYTES } from '../src/result-chunks';
import type { ResultCell } from '../src/result-encoding';
import { type RowsetSegment, writeRowsetSegments } from '../src/rowset-segments';
import { formatNumberVector } from '../src/vector-format';
import { connect as connectTo, destroy, failure, httpLogin, type Row } from './helpers/driver';

const connect = (wh: LocalWarehouse) => connectTo(wh.url);

type Chunk = { url: string; rowCount: number; uncompressedSize: number; compressedSize: number };
type QueryReply = { success: boolean; data: { queryId: string; rowset: unknown[][]; returned: number; total: number; chunks?: Chunk[]; qrmk?: string } };

/** The default (non-stream) mode: the driver downloads every chunk and hands over all rows at once. */
function execAll(conn: snowflake.Connection, sqlText: string, binds?: unknown[]): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    conn.execute({ sqlText, binds: binds as snowflake.Binds, complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Row[])) });
  });
}

/** `streamResult: true` + `stmt.streamRows()`: rows arrive chunk by chunk, with the driver's prefetch. */
function execStreamed(conn: snowflake.Connection, sqlText: string, binds?: unknown[]): Promise<{ rows: Row[]; total: number }> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      binds: binds as snowflake.Binds,
      streamResult: true,
      complete: (err, stmt) => {
        if (err) return reject(err);
        const rows: Row[] = [];
        stmt
          .streamRows()
          .on('data', (row: Row) => rows.push(row))
          .on('error', reject)
          .on('end', () => resolve({ rows, total: stmt.getNumRows() }));
      },
    });
  });
}

/** A query-request over plain HTTP, as the driver sends it, returning the parsed reply. */
async function httpQuery(wh: LocalWarehouse, sqlText: string): Promise<{ token: string; reply: QueryReply }> {
  const { token } = await httpLogin(wh.url);
  const res = await fetch(`${wh.url}/queries/v1/query-request?requestId=${randomUUID()}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${token}"` },
    body: JSON.stringify({ sqlText }),
  });
  return { token, reply: (await res.json()) as QueryReply };
}

/**
 * Rows of RANGE_SQL: about 1 MB of JSON, so 100 KB inline and three chunk files of growing size (200 KB, 400 KB,
 * the rest), well clear of both the two-file (under 700 KB) and the four-file (over 1.5 MB) result.
 */
const RANGE_ROWS = 24_000;
const RANGE_SQL = `SELECT i AS I, 'row-' || i AS LABEL, i * 0.5 AS HALF, IFF(i % 7 = 0, NULL, 'x"y\\\\z ü') AS ODD FROM range(0, ${RANGE_ROWS}) t(i) ORDER BY i`;

/** The fleet's embed statement shape with the model as a literal: one bound text per row. */
function embedStatement(texts: readonly string[]): { sql: string; binds: unknown[] } {
  const binds: unknown[] = [];
  texts.forEach((t, i) => binds.push(i, t));
  const sql =
    "SELECT t.I AS I, SNOWFLAKE.CORTEX.EMBED_TEXT_768('e5-base-v2', t.TXT) AS V " +
    `FROM (VALUES ${texts.map(() => '(?, ?)').join(', ')}) AS t(I, TXT) ORDER BY t.I`;
  return { sql, binds };
}

function lastQuery(wh: LocalWarehouse) {
  const [entry] = wh.queryHistory({ limit: 1 });
  return entry;
}

describe('local warehouse chunked results (large JSON results as chunk files, over the real driver)', () => {
  let wh: LocalWarehouse;
  let inline: LocalWarehouse;
  let conn: snowflake.Connection;
  let inlineConn: snowflake.Connection;

  beforeAll(async () => {
    // Default chunking (100 KB inline) and none at all, to compare the two.
    [wh, inline] = await Promise.all([
      startLocalWarehouse({ deals: 0, loginLatencyMs: 0 }),
      startLocalWarehouse({ deals: 0, loginLatencyMs: 0, resultChunkBytes: Infinity }),
    ]);
    [conn, inlineConn] = await Promise.all([connect(wh), connect(inline)]);
  });

  afterAll(async () => {
    await Promise.all([destroy(conn), destroy(inlineConn)]);
    await Promise.all([wh.close(), inline.close()]);
  });

  afterEach(() => {
    wh.setFault({ mode: 'none' });
  });

  it('reads a 24,000-row result back whole, in order and identical to the unchunked one, in both modes', async () => {
    const expected = await execAll(inlineConn, RANGE_SQL);
    expect(expected).toHaveLength(RANGE_ROWS);
    expect(inline.stats().chunkedResults).toBe(0);

    wh.resetStats();
    const all = await execAll(conn, RANGE_SQL);
    const first = lastQuery(wh);
    const streamed = await execStreamed(conn, RANGE_SQL);
    const second = lastQuery(wh);

    expect(all).toEqual(expected);
    expect(streamed.rows).toEqual(expected);
    expect(streamed.total).toBe(RANGE_ROWS);
    expect(first.chunkCount).toBeGreaterThanOrEqual(3);
    expect(second.chunkCount).toBe(first.chunkCount);
    expect(first.bytesInline).toBeLessThan(110_000); // 100 KB of rows plus the reply's metadata
    expect(first.bytesInChunksCompressed).toBeLessThan(first.bytesInChunks);
    const stats = wh.stats();
    expect(stats.chunkedResults).toBe(2);
    // Every chunk file downloaded exactly once per execution, none refused or failed.
    expect(stats.chunksServed).toBe(first.chunkCount + second.chunkCount);
    expect(stats.chunkDownloadsRefused).toBe(0);
    expect(stats.rowsReturned).toBe(2 * RANGE_ROWS);
  });

  it('chunks an EMBED_TEXT_768 batch of 300 texts and returns the same vectors as unchunked', async () => {
    const texts = Array.from({ length: 300 }, (_, i) => `Deal ${i}: the customer asked about pricing, renewal terms and seat count ${i * 7}`);
    const { sql, binds } = embedStatement(texts);
    const expected = await execAll(inlineConn, sql, binds);
    wh.resetStats();
    const all = await execAll(conn, sql, binds);
    const chunkCount = lastQuery(wh).chunkCount;
    const streamed = await execStreamed(conn, sql, binds);

    expect(chunkCount).toBeGreaterThanOrEqual(3);
    expect(all).toEqual(expected);
    expect(streamed.rows).toEqual(expected);
    expect(all).toHaveLength(300);
    for (const row of [all[0], all[150], all[299]]) {
      const v = JSON.parse(row.V as string) as number[];
      expect(v).toHaveLength(768);
      const want = embedText(texts[Number(row.I)]);
      expect(Math.max(...v.map((x, i) => Math.abs(x - want[i])))).toBeLessThan(1e-6);
    }
    expect(wh.stats()).toMatchObject({ chunkedResults: 2, chunksServed: 2 * chunkCount, embeddedTexts: 600 });
  });

  it('serves a chunk only with the result key: gzip rows without brackets; 403 without it; 404 unknown', async () => {
    const { token, reply } = await httpQuery(wh, RANGE_SQL);
    expect(reply.success).toBe(true);
    const { chunks, qrmk, rowset, returned } = reply.data;
    expect(returned).toBe(RANGE_ROWS);
    expect(qrmk).toEqual(expect.any(String));
    expect(chunks!.length).toBeGreaterThanOrEqual(3);
    expect(rowset.length + chunks!.reduce((n, c) => n + c.rowCount, 0)).toBe(RANGE_ROWS);
    // Chunk files start small and grow.
    expect(chunks![1].uncompressedSize).toBeGreaterThan(chunks![0].uncompressedSize);

    const url = chunks![1].url;
    expect(new URL(url).origin).toBe(wh.url);
    wh.resetStats();
    expect((await fetch(url)).status).toBe(403);
    const wrongKey = await fetch(url, {
      headers: { 'x-amz-server-side-encryption-customer-key': 'A'.repeat(qrmk!.length), 'x-amz-server-side-encryption-customer-algorithm': 'AES256' },
    });
    expect(wrongKey.status).toBe(403);
    expect(wh.stats().chunkDownloadsRefused).toBe(2);

    const headers = { 'x-amz-server-side-encryption-customer-key': qrmk!, 'x-amz-server-side-encryption-customer-algorithm': 'AES256' };
    const ok = await fetch(url, { headers });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-encoding')).toBe('gzip');
    expect(ok.headers.get('content-type')).not.toMatch(/json|xml/);
    expect(Number(ok.headers.get('content-length'))).toBe(chunks![1].compressedSize);
    const text = await ok.text(); // fetch inflates it, as the driver's HTTP client does
    expect(Buffer.byteLength(text)).toBe(chunks![1].uncompressedSize);
    expect(text.startsWith('[')).toBe(true);
    expect(text.startsWith('[[')).toBe(false);
    const rows = JSON.parse(`[${text}]`) as unknown[][];
    expect(rows).toHaveLength(chunks![1].rowCount);
    expect(rows[0][0]).toBe(String(rowset.length + chunks![0].rowCount));
    expect(wh.stats().chunksServed).toBe(1);

    // The stored result (GET /queries/<id>/result, what the driver refreshes with) points at the same files.
    const again = (await (
      await fetch(`${wh.url}/queries/${reply.data.queryId}/result`, { headers: { authorization: `Snowflake Token="${token}"` } })
    ).json()) as QueryReply;
    expect(again.data.chunks).toEqual(chunks);
    expect(again.data.qrmk).toBe(qrmk);

    expect((await fetch(`${wh.url}/chunks/${randomUUID()}/0`, { headers })).status).toBe(404);
    expect((await fetch(url.replace(/\/\d+$/, '/999'), { headers })).status).toBe(404);

    // The 'down' fault covers chunk downloads like every other Snowflake request.
    wh.setFault({ mode: 'down' });
    await expect(fetch(url, { headers })).rejects.toThrow();
  });

  it("survives one injected 503: the driver's own retry downloads the chunk", async () => {
    const expected = await execAll(inlineConn, RANGE_SQL);
    wh.resetStats();
    wh.setFault({ mode: 'chunk-error', status: 503, times: 1 });
    const started = performance.now();
    const rows = await execAll(conn, RANGE_SQL);
    const elapsed = performance.now() - started;
    expect(rows).toEqual(expected);
    const stats = wh.stats();
    expect(stats.chunkDownloadsFailed).toBe(1);
    expect(stats.chunksServed).toBe(lastQuery(wh).chunkCount);
    // The driver sleeps 1–3 s before its first retry of a chunk (decorrelated jitter from 1 s).
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(10_000);
  });

  it('fails the row stream with driver error 402002 on a status the driver does not retry (410 expired)', async () => {
    wh.setFault({ mode: 'chunk-error', status: 410 });
    const started = performance.now();
    const streamErr = await failure(execStreamed(conn, RANGE_SQL));
    expect(String(streamErr.code)).toBe('402002');
    expect(streamErr.message).toBe('Request to S3/Blob failed.');
    const allErr = await failure(execAll(conn, RANGE_SQL));
    expect(String(allErr.code)).toBe('402002');
    expect(performance.now() - started).toBeLessThan(5_000); // no retries, no backoff
    expect(wh.stats().chunkDownloadsFailed).toBeGreaterThanOrEqual(2);

    // Small results are inline and unaffected.
    expect(await execAll(conn, 'SELECT 1 AS ONE')).toEqual([{ ONE: 1 }]);
  });

  it('validates resultChunkBytes and the chunk-error fault', async () => {
    await expect(startLocalWarehouse({ resultChunkBytes: 0 })).rejects.toThrow(/`resultChunkBytes`.*0/);
    await expect(startLocalWarehouse({ resultChunkBytes: 1.5 })).rejects.toThrow(/`resultChunkBytes`/);
    expect(() => wh.setFault({ mode: 'chunk-error', status: 200 })).toThrow(/`fault.status`/);
    expect(() => wh.setFault({ mode: 'chunk-error', times: 0 })).toThrow(/`fault.times`/);
  });
});

describe('writeRowsetSegments (cutting a rowset into the inline part and chunk files)', () => {
  const text = (seg: RowsetSegment) => Buffer.concat(seg.parts as Buffer[]).toString('utf8');
  const rows = (seg: RowsetSegment) => JSON.parse(`[${text(seg)}]`) as unknown[][];
  const asText = (rowset: ResultCell[][]) => rowset.map((r) => r.map((c) => (Buffer.isBuffer(c) ? c.toString('latin1') : c)));

  const rowset: ResultCell[][] = Array.from({ length: 2000 }, (_, i) => [
    String(i),
    i % 5 === 0 ? null : `héllo "${i}" \\ 😀`,
    formatNumberVector([i / 3, -i, 0.125]),
  ]);

  it('cuts at row boundaries into parts of at most each limit, which rejoin to the whole rowset', () => {
    const segments = writeRowsetSegments(rowset, { first: 1000, next: (i) => 2000 * (i + 1) });
    expect(segments.length).toBeGreaterThan(5);
    segments.forEach((seg, i) => {
      expect(Buffer.byteLength(text(seg))).toBe(seg.bytes);
      expect(seg.bytes).toBeLessThanOrEqual(i === 0 ? 1000 : 2000 * i);
      expect(rows(seg)).toHaveLength(seg.rowCount);
      expect(seg.rowCount).toBeGreaterThan(0);
    });
    expect(segments.flatMap(rows)).toEqual(asText(rowset));
    // Vector cells are referenced as they are, not copied.
    expect(segments.some((seg) => seg.parts.includes(rowset[1][2] as Buffer))).toBe(true);
  });

  it('writes one segment without limits (identical bytes) and gives an oversized row a segment of its own', () => {
    const [whole, ...none] = writeRowsetSegments(rowset);
    expect(none).toEqual([]);
    expect(whole.bytes).toBe(-1);
    expect(text(whole)).toBe(
      writeRowsetSegments(rowset, { first: Infinity, next: () => Infinity })
        .map(text)
        .join(''),
    );
    const big: ResultCell[][] = [['a'], ['x'.repeat(500)], ['b']];
    expect(writeRowsetSegments(big, { first: 100, next: () => 100 }).map((s) => s.rowCount)).toEqual([1, 1, 1]);
    expect(writeRowsetSegments([], { first: 100, next: () => 100 })).toEqual([{ parts: [], rowCount: 0, bytes: 0 }]);
  });

  it('grows chunk files from twice the inline size up to 16 MiB, like Snowflake', () => {
    const limits = chunkLimits(100_000)!;
    expect(limits.first).toBe(100_000);
    expect([0, 1, 2, 3].map(limits.next)).toEqual([200_000, 400_000, 800_000, 1_600_000]);
    expect(limits.next(20)).toBe(MAX_CHUNK_FILE_BYTES);
    expect(chunkLimits(Infinity)).toBeUndefined();
    expect(chunkLimits(32 * 1024 * 1024)!.next(0)).toBe(32 * 1024 * 1024);
  });
});
