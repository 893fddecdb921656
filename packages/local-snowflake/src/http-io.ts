import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { SnowflakeError } from './snowflake-error';

const gunzipAsync = promisify(gunzip);

/** Largest request body accepted (a 100,000-value array bind of short texts is a few MB). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A request the server cannot read at all; answered with 4xx (which the driver does not retry). */
export class BadRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/**
 * Reads a JSON request body. snowflake-sdk gzips bodies, but asynchronously and racing the send: the
 * `Content-Encoding: gzip` header and the compressed bytes do not reliably travel together, so the
 * body's own gzip magic bytes decide, not the header.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new BadRequestError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(buf);
  }
  let body = Buffer.concat(chunks);
  if (body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b) {
    try {
      body = await gunzipAsync(body, { maxOutputLength: MAX_BODY_BYTES });
    } catch (err) {
      throw new BadRequestError(400, `request body is not valid gzip: ${(err as Error).message}`);
    }
  }
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequestError(400, 'request body is not valid JSON');
  }
}

/** A JSON reply body: text, or its UTF-8 bytes (query replies, which are kept for replay, are bytes). */
export type JsonBody = string | Buffer;

/**
 * Sends a JSON reply with its Content-Length. A string body is encoded to UTF-8 once here: passing the
 * string to both `Buffer.byteLength` and `res.end` encodes a multi-MB embedding reply twice.
 */
export function sendJson(res: ServerResponse, body: JsonBody, status = 200): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.byteLength });
  res.end(bytes);
}

/** The token in `Authorization: Snowflake Token="…"`. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header ? /Snowflake Token="([^"]*)"/.exec(header)?.[1] : undefined;
}

/** Reads a JSON object body or fails the request as a Snowflake-style client error. */
export function asObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new SnowflakeError('390142', `${what} body must be a JSON object`, '08001');
  }
  return body as Record<string, unknown>;
}
