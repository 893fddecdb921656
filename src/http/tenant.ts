import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ValidationError } from '../contracts/errors';
import { DEFAULT_TENANT, Tenant } from '../contracts/tenants';
import { openApiSchema, TENANT_DESCRIPTION, validateRequest } from './schemas';

/** The header that names an enqueue's tenant (the body's `tenant` field does the same). */
const TENANT_HEADER = 'x-fleet-tenant';
/** How issues and messages name the header. */
const HEADER_NAME = 'X-Fleet-Tenant';

/** The header in the OpenAPI document (a `headers` schema property of an enqueue route). */
export const TENANT_HEADER_SCHEMA = { [TENANT_HEADER]: { ...openApiSchema(Tenant), description: TENANT_DESCRIPTION } };

/** The header, validated: undefined when absent; issues naming the header when it is not a tenant name. */
function headerTenant(req: FastifyRequest): { tenant?: string; issues: { path: string; message: string }[] } {
  const raw = req.headers[TENANT_HEADER];
  if (raw === undefined) return { issues: [] };
  // Node joins a repeated header with ", ", which no tenant name contains: two tenants are refused.
  const value = Array.isArray(raw) ? raw.join(', ') : raw;
  const parsed = Tenant.safeParse(value);
  if (parsed.success) return { tenant: parsed.data, issues: [] };
  return { issues: [{ path: HEADER_NAME, message: parsed.error.issues[0]?.message ?? 'is not a tenant name' }] };
}

/**
 * An enqueue request's body, validated with `schema` (which has an optional `tenant` field), and its tenant:
 * the `X-Fleet-Tenant` header or the body's `tenant`, or undefined for neither (the producer's default).
 * Every problem is one ValidationError (400): a bad header, bad body fields, or a header and a body field that
 * name different tenants.
 */
export function validateEnqueue<S extends z.ZodType<{ tenant?: string }>>(schema: S, req: FastifyRequest): { body: z.output<S>; tenant: string | undefined } {
  const header = headerTenant(req);
  let body: z.output<S>;
  try {
    body = validateRequest(schema, req.body, 'body');
  } catch (err) {
    if (err instanceof ValidationError && header.issues.length) throw new ValidationError([...header.issues, ...err.issues]);
    throw err;
  }
  if (header.issues.length) throw new ValidationError(header.issues);
  const fromBody = (body as { tenant?: string }).tenant;
  if (header.tenant !== undefined && fromBody !== undefined && header.tenant !== fromBody) {
    throw new ValidationError([
      {
        path: HEADER_NAME,
        message: `is ${JSON.stringify(header.tenant)} but the body's \`tenant\` is ${JSON.stringify(fromBody)}: send one of them, or the same tenant in both`,
      },
      { path: 'tenant', message: `is ${JSON.stringify(fromBody)} but the ${HEADER_NAME} header is ${JSON.stringify(header.tenant)}` },
    ]);
  }
  return { body, tenant: header.tenant ?? fromBody };
}

/** The tenant a 2xx names: the one given, or the shared default the producer applied. */
export const appliedTenant = (tenant: string | undefined): string => tenant ?? DEFAULT_TENANT;
