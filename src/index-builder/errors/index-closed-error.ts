/** A call reached an index component (thread, builder, search service) after `close()` began. Not retryable on that instance. */
export class IndexClosedError extends Error {
  constructor(readonly component: string) {
    super(`${component} is closed`);
    this.name = 'IndexClosedError';
  }
}
