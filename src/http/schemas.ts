import { z } from 'zod';
import { DealId, MAX_DEAL_IDS } from '../contracts/deals';
import { EMBEDDING_MODELS, IndexTarget } from '../contracts/embedding';
import { ValidationError } from '../contracts/errors';
import { DEFAULT_TENANT, Tenant } from '../contracts/tenants';
import { MAX_TEXT_CHARS, WarehouseText } from '../contracts/text';
import { WorkflowJobData } from '../contracts/workflows';

/** Most texts one `POST /v1/embeddings` may carry (each becomes one job). */
const MAX_TEXTS_PER_REQUEST = 1_000;
/** BullMQ's priority range (1 = highest). */
const MAX_PRIORITY = 2_097_152;

const Priority = z
  .number({ error: 'must be a number' })
  .int('must be an integer')
  .min(1, `must be an integer from 1 (highest) to ${MAX_PRIORITY}`)
  .max(MAX_PRIORITY, `must be an integer from 1 (highest) to ${MAX_PRIORITY}`)
  .meta({ description: 'BullMQ priority, 1 = highest. Omit for FIFO.' });

const Text = WarehouseText.meta({
  description: `Text to embed: 1-${MAX_TEXT_CHARS} characters, not only whitespace, no NUL bytes. Longer texts are rejected, never truncated.`,
  minLength: 1,
  maxLength: MAX_TEXT_CHARS,
});

/** What the OpenAPI document says of an enqueue's tenant (the body field and the `X-Fleet-Tenant` header). */
export const TENANT_DESCRIPTION =
  'Who the job is for (1-128 letters, digits or _ . : / -, starting with a letter or digit). Jobs of different tenants are served fairly on the ' +
  'embeddings and deals queues, where each tenant has its own limits (most unfinished jobs, optional rate; past one, 429 `tenant_limit`). ' +
  `Give it as the body's \`tenant\` or the \`X-Fleet-Tenant\` header (the same value if both). Default: the shared tenant \`${DEFAULT_TENANT}\`.`;

/** An enqueue's `tenant` body field: the contracts' Tenant. */
const TenantField = Tenant.meta({ description: TENANT_DESCRIPTION });

/** `POST /v1/embeddings`: one text or a list, each enqueued as one job. */
export const EmbeddingsRequest = z
  .strictObject({
    text: Text.optional(),
    texts: z
      .array(Text, { error: 'must be an array of strings' })
      .min(1, 'must contain at least one text')
      .max(MAX_TEXTS_PER_REQUEST, `must contain at most ${MAX_TEXTS_PER_REQUEST} texts`)
      .optional(),
    model: z.enum(EMBEDDING_MODELS, { error: `must be one of ${EMBEDDING_MODELS.join(', ')}` }).optional(),
    index: z
      .union([IndexTarget, z.array(IndexTarget)], {
        error: 'must be an index target {namespace, id} (for `text`) or a list of them, one per text (for `texts`)',
      })
      .optional()
      .meta({ description: 'Upsert the vector into the search index: one {namespace, id} for `text`, a list (one per text) for `texts`.' }),
    priority: Priority.optional(),
    tenant: TenantField.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.text === undefined && v.texts === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'one of `text` or `texts` is required' });
    if (v.text !== undefined && v.texts !== undefined) ctx.addIssue({ code: 'custom', path: ['texts'], message: 'give either `text` or `texts`, not both' });
    if (v.index !== undefined) {
      if (v.text !== undefined && Array.isArray(v.index))
        ctx.addIssue({ code: 'custom', path: ['index'], message: 'must be one {namespace, id} object for `text`' });
      if (v.texts !== undefined && !Array.isArray(v.index))
        ctx.addIssue({ code: 'custom', path: ['index'], message: 'must be a list of {namespace, id}, one per text, for `texts`' });
      if (v.texts !== undefined && Array.isArray(v.index) && v.index.length !== v.texts.length) {
        ctx.addIssue({ code: 'custom', path: ['index'], message: `must have one target per text (${v.texts.length}), got ${v.index.length}` });
      }
    }
  });
export type EmbeddingsRequest = z.output<typeof EmbeddingsRequest>;

/** `POST /v1/deals/insights`: one job for up to 1,000 distinct deal ids. */
export const DealInsightsRequest = z.strictObject({
  dealIds: z
    .array(DealId, { error: 'must be an array of deal ids' })
    .min(1, 'must contain at least one id')
    .max(MAX_DEAL_IDS, `must contain at most ${MAX_DEAL_IDS} ids`)
    .meta({ description: `1-${MAX_DEAL_IDS} distinct deal ids.`, uniqueItems: true }),
  priority: Priority.optional(),
  tenant: TenantField.optional(),
});
export type DealInsightsRequest = z.output<typeof DealInsightsRequest>;

/** `POST /v1/workflows`: the workflow's payload as a caller writes it (the trace comes from the request). */
export const WorkflowRequest = WorkflowJobData.omit({ trace: true }).extend({ tenant: TenantField.optional() });
export type WorkflowRequest = z.output<typeof WorkflowRequest>;

/** `GET /v1/workflows/:id`: the id the start answered with. */
export const WorkflowParams = z.strictObject({
  id: z
    .string()
    .min(1, 'must not be empty')
    .max(256, 'must be at most 256 characters')
    .regex(/^[^\s:]+$/, 'must not contain whitespace or ":"'),
});

/** `?waitMs=` on enqueue routes: wait up to this long for the result. */
export function waitQuery(maxWaitMs: number) {
  return z.strictObject({
    // An empty `?waitMs=` would coerce to 0 (no wait) without a word: refuse it like any non-number.
    waitMs: z
      .preprocess(
        (v) => (typeof v === 'string' && v.trim() === '' ? Number.NaN : v),
        z.coerce
          .number({ error: 'must be a number of milliseconds' })
          .int('must be an integer number of milliseconds')
          .min(0, `must be from 0 to ${maxWaitMs}`)
          .max(maxWaitMs, `must be from 0 to ${maxWaitMs}`),
      )
      .optional()
      .meta({ description: `Wait up to this many ms (max ${maxWaitMs}) for the results: 200 with them if every job finished, else 202.` }),
  });
}

export const JobParams = z.strictObject({
  queue: z.string().min(1).max(64),
  id: z
    .string()
    .min(1, 'must not be empty')
    .max(256, 'must be at most 256 characters')
    .regex(/^[^\s:]+$/, 'must not contain whitespace or ":"'),
});

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** The `Idempotency-Key` header of an enqueue route, as its OpenAPI `headers` schema property. */
export const idempotencyHeaderSchema = (description: string) => ({ [IDEMPOTENCY_HEADER]: { type: 'string', minLength: 1, maxLength: 512, description } });
export const IdempotencyKey = z.string().min(1, 'must be 1-512 characters').max(512, 'must be 1-512 characters');

/** zod path → `texts[3].index`, as the producer's ValidationError names fields. */
function pathString(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

/**
 * Parses `input` or throws the producer's ValidationError naming each bad field; unknown fields are
 * named one by one; a problem with the whole input is reported under `root` (`body`, `query`).
 */
export function validateRequest<S extends z.ZodType>(schema: S, input: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues: { path: string; message: string }[] = [];
  for (const issue of parsed.error.issues) {
    const base = pathString(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ path: base ? `${base}.${key}` : key, message: 'unknown field' });
    } else if (base === '' && issue.code === 'invalid_type') {
      issues.push({
        path: root,
        message: `must be a JSON object${input === undefined ? ' (the request has no body; send Content-Type: application/json)' : ''}`,
      });
    } else {
      issues.push({ path: base || root, message: issue.message });
    }
  }
  throw new ValidationError(issues);
}

/** JSON Schema (OpenAPI 3.0 dialect) of a request schema, for the OpenAPI document only; zod validates. */
export function openApiSchema(schema: z.ZodType, opts: { omit?: readonly string[] } = {}): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  // Fields a caller does not send over HTTP (the contracts' `trace` is the request's own span).
  const properties = json.properties as Record<string, unknown> | undefined;
  for (const name of opts.omit ?? []) delete properties?.[name];
  return json;
}
