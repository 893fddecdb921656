import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LuaCommand } from '../redis-lua/lua-command';
import { BuilderLockError } from './errors/builder-lock-error';

const renewLease = new LuaCommand(
  'fleetLeaseRenew',
  `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`,
);
const releaseLease = new LuaCommand('fleetLeaseRelease', `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`);

/**
 * A Redis lease (SET NX PX + compare-and-renew) making the builder a single writer per prefix.
 * Renewed every third of its TTL; `onLost` fires once if a renewal finds it gone or taken.
 */
export class BuilderLease {
  private readonly token = `${process.pid}-${randomBytes(8).toString('hex')}`;
  private timer?: NodeJS.Timeout;
  private held = false;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly key: string,
    private readonly ttlMs: number,
    private readonly onLost: (err: BuilderLockError) => void,
  ) {}

  /** Takes the lease, retrying every `retryMs` for up to `waitMs`. */
  async acquire(waitMs: number, retryMs = 500): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if ((await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK') break;
      if (Date.now() >= deadline) {
        const holder = await this.redis.get(this.key);
        throw new BuilderLockError(this.key, `held by ${holder ?? 'another builder'} (waited ${waitMs} ms)`);
      }
      await new Promise((r) => setTimeout(r, Math.min(retryMs, Math.max(1, deadline - Date.now()))));
    }
    this.held = true;
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (!this.held) return;
    try {
      const ok = await renewLease.run(this.redis, [this.key], [this.token, this.ttlMs]);
      if (ok === 1 || !this.held) return;
      this.lost(new BuilderLockError(this.key, 'lost: the lease expired or was taken by another builder'));
    } catch {
      // A transient Redis error: the next renewal (a third of the TTL later) tries again.
    }
  }

  private lost(err: BuilderLockError): void {
    this.held = false;
    clearInterval(this.timer);
    this.onLost(err);
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if (!this.held) return;
    this.held = false;
    await releaseLease.run(this.redis, [this.key], [this.token]);
  }
}
