import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledFault } from './options';
import type { ResultChunks } from './result-chunks';
import type { StatsRecorder } from './stats';

/** `GET /chunks/<queryId>/<n>`: where {@link chunkPath} points. */
export const CHUNK_PATH = /^\/chunks\/([0-9a-f-]{36})\/(\d{1,6})$/i;

const KEY_HEADER = 'x-amz-server-side-encryption-customer-key';
const ALGORITHM_HEADER = 'x-amz-server-side-encryption-customer-algorithm';

function sameKey(given: string | string[] | undefined, qrmk: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(qrmk);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An S3-style error: XML, which the driver, like any S3 client, only reads the status of. */
function sendS3Error(res: ServerResponse, status: number, code: string, message: string): void {
  const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': body.length });
  res.end(body);
}

const S3_CODES: Record<number, string> = { 403: 'AccessDenied', 404: 'NoSuchKey', 410: 'ExpiredToken', 500: 'InternalError', 503: 'SlowDown' };

/**
 * Serves the chunk files of large results the way Snowflake's result store (S3 with customer keys)
 * does, as snowflake-sdk's large-result-set service expects: the gzip file with `Content-Encoding: gzip`
 * (its HTTP client then inflates it) and a non-JSON content type (a JSON one would make it parse the
 * comma-joined rows, which are not a JSON document). A download must carry the result's key (`qrmk`)
 * and `AES256`, else 403. Also applies the `'chunk-error'` fault.
 */
export class ChunkDownloads {
  private failuresLeft = 0;
  private failStatus = 503;

  constructor(
    private readonly lookup: (queryId: string) => ResultChunks | undefined,
    private readonly stats: StatsRecorder,
  ) {}

  /** Arms (or disarms) the `'chunk-error'` fault; its count starts again at every call. */
  setFault(fault: CompiledFault): void {
    this.failuresLeft = fault.mode === 'chunk-error' ? fault.times : 0;
    this.failStatus = fault.status;
  }

  serve(req: IncomingMessage, res: ServerResponse, queryId: string, index: number): void {
    const chunks = this.lookup(queryId);
    const file = chunks?.files[index];
    if (!chunks || !file) {
      // Never stored, or the result (and its reply) expired from the replay cache. Not 403, which the
      // driver would retry for a minute and more.
      return sendS3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    }
    if (!sameKey(req.headers[KEY_HEADER], chunks.qrmk) || req.headers[ALGORITHM_HEADER] !== 'AES256') {
      this.stats.counters.chunkDownloadsRefused++;
      return sendS3Error(res, 403, 'AccessDenied', 'Access Denied');
    }
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      this.stats.counters.chunkDownloadsFailed++;
      return sendS3Error(res, this.failStatus, S3_CODES[this.failStatus] ?? 'InjectedFailure', 'Injected by the chunk-error fault.');
    }
    this.stats.counters.chunksServed++;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Encoding': 'gzip', 'Content-Length': file.length });
    res.end(file);
  }
}
