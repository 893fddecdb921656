/**
 * Another index builder holds the builder lease for this prefix (`<prefix>:index:builder`), or this
 * builder lost its lease (Redis unreachable longer than the lease). Only one builder may apply the log
 * and write snapshots; during a rolling deploy the new one waits for the old one's `close()`.
 */
export class BuilderLockError extends Error {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`index builder lease ${key}: ${reason}`);
    this.name = 'BuilderLockError';
  }
}
