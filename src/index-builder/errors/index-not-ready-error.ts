/**
 * The search service has no snapshot to serve yet (none was written, or every one on disk was refused).
 * Transient: an HTTP layer should answer 503 and a caller retry later; the service loads the first good
 * snapshot the builder announces.
 */
export class IndexNotReadyError extends Error {
  constructor(readonly reason: string) {
    super(`vector index not ready: ${reason}`);
    this.name = 'IndexNotReadyError';
  }
}
