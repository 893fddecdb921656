import { createHash } from 'node:crypto';

/**
 * Cache keys. A cache instance owns one key space, `<prefix>:<version>:<namespace>:`, and callers hand it
 * the part after that (the "logical key"): the helpers below build logical keys for the fleet's two caches.
 * Bump the version when a codec or the meaning of a value changes: old entries are then simply never read
 * again and expire by TTL.
 *
 * Redis key of an embedding: `fleet:cache:v1:emb:<base64url(sha256)>`.
 */

/** Namespace of the embedding cache. */
export const EMBEDDING_NAMESPACE = 'emb';
/** Namespace of the deal-insight cache. */
export const DEAL_NAMESPACE = 'deal';

/** Default key prefix and version of every fleet cache. */
export const DEFAULT_KEY_PREFIX = 'fleet:cache';
export const DEFAULT_KEY_VERSION = 'v1';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PREFIX_RE = /^[A-Za-z0-9{][A-Za-z0-9_.:{}-]{0,127}$/;

/** True for a namespace or version segment: 1-64 letters, digits, `_`, `.` or `-` (no `:`, no `*`). */
export function isKeySegment(s: unknown): s is string {
  return typeof s === 'string' && NAME_RE.test(s);
}

/** True for a key prefix: may contain `:` and a `{hash tag}` (also at the start, as `{fleet}:cache`), never glob characters. */
export function isKeyPrefix(s: unknown): s is string {
  return typeof s === 'string' && PREFIX_RE.test(s);
}

/** `<prefix>:<version>:<namespace>:` — everything one cache instance reads and writes starts with this. */
export function keySpace(prefix: string, version: string, namespace: string): string {
  return `${prefix}:${version}:${namespace}:`;
}

/** The pub/sub channel of a key space's invalidations (`~` cannot occur in a logical key made by the helpers). */
export function invalidationChannel(space: string): string {
  return `${space}~invalidate`;
}

/**
 * Logical key of an embedding: base64url of SHA-256 over the model and the text. The model is
 * length-prefixed (`<utf8 byte length>:<model>`), so no (model, text) pair can collide with another
 * whatever characters either contains. Stable across processes, machines and Node versions (unlike a
 * language-level `hash()`).
 *
 * @example
 *   embeddingKey('e5-base-v2', 'renewal is at risk') // 'pX0…' (43 characters)
 */
export function embeddingKey(model: string, text: string): string {
  if (typeof model !== 'string' || model.length === 0) throw new TypeError(`embeddingKey: model must be a non-empty string, got ${JSON.stringify(model)}`);
  if (typeof text !== 'string') throw new TypeError(`embeddingKey: text must be a string, got ${typeof text}`);
  return createHash('sha256')
    .update(`${Buffer.byteLength(model, 'utf8')}:${model}`, 'utf8')
    .update(text, 'utf8')
    .digest('base64url');
}

const DEAL_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Logical key of a deal's insight: the deal id itself, which the contracts already restrict to
 * `[A-Za-z0-9_-]{1,64}` (so it cannot smuggle a `:` or a glob into the key). Throws on anything else
 * rather than hashing it, so operators can still find a deal's entry by eye.
 */
export function dealKey(id: string): string {
  if (typeof id !== 'string' || !DEAL_ID_RE.test(id)) throw new RangeError(`dealKey: id must be 1-64 letters, digits, _ or -, got ${JSON.stringify(id)}`);
  return id;
}
