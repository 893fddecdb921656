import type { FastifyInstance } from 'fastify';
import { QUEUES } from '../../contracts/queues';
import type { Producer } from '../../producers';
import type { Admission } from '../admission';
import { HttpError } from '../http-error';
import { jobWithState } from '../job-state';
import { errorResponses, WORKFLOW_BODY, WORKFLOW_STARTED_BODY } from '../openapi';
import { idempotencyHeaderSchema, openApiSchema, validateRequest, WorkflowParams, WorkflowRequest } from '../schemas';
import { appliedTenant, TENANT_HEADER_SCHEMA, validateEnqueue } from '../tenant';
import { enqueueKeyOf, type V1Scope } from '../v1-scope';

/**
 * `POST /v1/workflows` starts a workflow over the producer (a BullMQ flow: collectors in parallel,
 * analysers, synthesis; a retried request with the same Idempotency-Key returns the same workflow), and
 * `GET /v1/workflows/:id` says where it is and, once done, its report.
 */
export async function workflowRoutes(v1: FastifyInstance, opts: { scope: V1Scope; producer: Producer; admission: Admission }): Promise<void> {
  const { scope, producer, admission } = opts;
  // Looked up per request: a queue opened at registration would talk to Redis even in an API nobody asks for workflows.
  const workflows = () => admission.queue(QUEUES.workflows);

  v1.post(
    '/v1/workflows',
    {
      schema: {
        tags: ['workflows'],
        summary: 'Start a workflow (collect in parallel, analyse, synthesise)',
        security: [{ bearerAuth: [] }],
        headers: {
          type: 'object',
          properties: {
            ...idempotencyHeaderSchema(
              'A retried request with the same key returns the same workflow. Without one, the API assigns a UUID, named in every answer.',
            ),
            ...TENANT_HEADER_SCHEMA,
          },
        },
        body: openApiSchema(WorkflowRequest),
        response: {
          202: {
            description:
              'Started (or, for a repeated Idempotency-Key, the workflow it started); with `buffered: true`, Redis is unreachable and the workflow waits in the API process, sent when it is back',
            ...WORKFLOW_STARTED_BODY,
          },
          ...errorResponses(400, 401, 413, 415, 429, 503, 504),
        },
      },
    },
    (req, reply) =>
      scope.inSpan(req, async () => {
        const { body, tenant } = validateEnqueue(WorkflowRequest, req);
        const idempotencyKey = enqueueKeyOf(req, reply);
        const { question, ...options } = body;
        const handle = await admission.enqueue(QUEUES.workflows, 1, idempotencyKey, (trace, signal) =>
          producer.workflow(question, { ...options, tenant, idempotencyKey, trace, signal }),
        );
        // The workflow is started: a slow state lookup must not turn that into an error (the caller would
        // think it failed), so it answers 'unknown' instead.
        const state = handle.buffered
          ? 'buffered'
          : await admission.lookupOr(
              workflows()
                .getJob(handle.id)
                .then((job) => job?.getState() ?? 'unknown'),
              'unknown',
            );
        const href = `/v1/workflows/${encodeURIComponent(handle.id)}`;
        reply.code(202).header('location', href);
        return { id: handle.id, queue: handle.queue, tenant: appliedTenant(tenant), state, href, idempotencyKey, buffered: handle.buffered };
      }),
  );

  v1.get(
    '/v1/workflows/:id',
    {
      schema: {
        tags: ['workflows'],
        summary: 'State and report of a workflow',
        security: [{ bearerAuth: [] }],
        params: openApiSchema(WorkflowParams),
        response: { 200: { description: 'The workflow', ...WORKFLOW_BODY }, ...errorResponses(400, 401, 404, 503) },
      },
    },
    (req) =>
      scope.inSpan(req, async () => {
        const { id } = validateRequest(WorkflowParams, req.params, 'params');
        // Redis does not know a buffered workflow yet (and may be away): this process does.
        if (producer.isBuffered(QUEUES.workflows, id)) return { id, state: 'buffered', report: null };
        const queue = workflows();
        const read = await admission.withinDeadline(queue.getJob(id), 'job lookup');
        if (!read)
          throw new HttpError(404, 'workflow_not_found', `no workflow ${JSON.stringify(id)} (it never existed, or it was removed after its retention period)`);
        const [{ job, state }, dependencies] = await admission.withinDeadline(
          Promise.all([jobWithState(queue, read), read.getDependenciesCount()]),
          'job lookup',
        );
        return { id, state, report: job.returnvalue ?? null, ...(job.failedReason ? { failedReason: job.failedReason } : {}), dependencies };
      }),
  );
}
