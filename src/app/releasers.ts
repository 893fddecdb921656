import type { Logger } from '../telemetry/logger';

/**
 * Resources registered as they are created and released last-in-first-out, each one even if an
 * earlier release throws (so a failing `close()` never leaks the next resource).
 */
export class Releasers {
  private readonly stack: { name: string; release: () => unknown }[] = [];
  private releasing?: Promise<void>;

  add(name: string, release: () => unknown): void {
    if (this.releasing) throw new Error(`cannot register ${name}: resources are being released`);
    this.stack.push({ name, release });
  }

  /** Releases everything in reverse order of registration. Idempotent; resolves after the last one. */
  releaseAll(logger?: Logger): Promise<void> {
    this.releasing ??= (async () => {
      const errors: unknown[] = [];
      while (this.stack.length) {
        const { name, release } = this.stack.pop()!;
        try {
          await release();
          logger?.debug({ resource: name }, 'released');
        } catch (err) {
          errors.push(err);
          logger?.error({ resource: name, err }, 'release failed');
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `${errors.length} resources failed to release`);
    })();
    return this.releasing;
  }
}
