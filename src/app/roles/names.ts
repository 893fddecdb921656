/**
 * The roles a process can run, by name: what the CLI offers and checks (`fleet worker --role R`) without loading
 * the roles themselves (src/app/roles/index.ts implements exactly these; its table is typed by this list).
 */
export const WORKER_ROLES = ['embeddings', 'deals', 'flows', 'index', 'search'] as const;

export type WorkerRole = (typeof WORKER_ROLES)[number];
