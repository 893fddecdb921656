import type { ChainableCommander, Cluster, Redis } from 'ioredis';

/** A key or argument of a script call. */
export type LuaArg = string | Buffer | number;

export interface LuaCallOptions {
  /** Replies as Buffers (binary values) instead of strings. Default false. */
  buffers?: boolean;
}

/** A custom command as ioredis defines it on a client or a pipeline: numkeys, keys, then args. */
type ScriptMethod = (this: unknown, numKeys: number, ...keysAndArgs: LuaArg[]) => unknown;

/** The scripts this module defined on each client, by command name (so a second define is a no-op, a clash an error). */
const definedOn = new WeakMap<Redis | Cluster, Map<string, string>>();

const NAME = /^fleet[A-Z][A-Za-z0-9]*$/;

/**
 * The fleet's one way of running Lua on Redis: an ioredis custom command (`defineCommand`), defined once on
 * each client that runs it. ioredis sends the script's text only the first time on each connection (EVAL)
 * and its 40-character sha after that (EVALSHA); after a NOSCRIPT reply (SCRIPT FLUSH, a restart, a
 * failover) it sends the text again by itself. So a script on a hot path costs its text once per
 * connection, not once per call.
 *
 * Names start with `fleet` (ioredis adds `name` and `nameBuffer` methods to the client, which must not
 * shadow a Redis command or one of BullMQ's scripts on a shared connection). Keys are passed per call,
 * so one script serves any number of keys.
 *
 * @example
 *   const incrBoth = new LuaCommand('fleetIncrBoth', `return { redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2]) }`);
 *   await incrBoth.run(redis, ['{p}:a', '{p}:b'], []);
 *   // in a pipeline: define it on the client before creating the pipeline
 *   incrBoth.defineOn(redis);
 *   const p = redis.pipeline();
 *   incrBoth.queue(p, ['{p}:a', '{p}:b'], []);
 *   await p.exec();
 */
export class LuaCommand {
  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    if (typeof name !== 'string' || !NAME.test(name))
      throw new TypeError(`LuaCommand: name must match ${NAME} (e.g. fleetAppendOnce), got ${JSON.stringify(name)}`);
    if (typeof lua !== 'string' || lua.trim() === '') throw new TypeError(`LuaCommand ${name}: lua must be the script's text`);
  }

  /**
   * Defines the command on `redis` unless it already is (idempotent, no I/O). `run` does it by itself;
   * call it before `redis.pipeline()` to `queue` the script on that pipeline.
   */
  defineOn(redis: Redis | Cluster): void {
    let defined = definedOn.get(redis);
    const lua = defined?.get(this.name);
    if (lua === this.lua) return;
    if (lua !== undefined) throw new Error(`LuaCommand: another script is already defined as ${this.name} on this client`);
    if (this.name in redis) {
      // Defined by another copy of this module (jest's module registry, a bundled copy): fine if it is this script.
      const other = (redis.scriptsSet as Record<string, { lua?: string } | undefined>)[this.name];
      if (other?.lua !== this.lua) throw new Error(`LuaCommand: ${this.name} would shadow an existing method or script of the client`);
    } else {
      redis.defineCommand(this.name, { lua: this.lua });
    }
    if (!defined) {
      defined = new Map();
      definedOn.set(redis, defined);
    }
    defined.set(this.name, this.lua);
  }

  /** Runs the script on `redis` with `keys` (KEYS) and `args` (ARGV), defining it there first if needed. */
  run(redis: Redis | Cluster, keys: readonly LuaArg[], args: readonly LuaArg[], opts: LuaCallOptions = {}): Promise<unknown> {
    this.defineOn(redis);
    return this.method(redis, opts).call(redis, keys.length, ...keys, ...args) as Promise<unknown>;
  }

  /** Adds a call of the script to `pipeline` (its reply comes with `exec()`). The pipeline's client must have it defined. */
  queue(pipeline: ChainableCommander, keys: readonly LuaArg[], args: readonly LuaArg[], opts: LuaCallOptions = {}): void {
    const method = this.method(pipeline, opts);
    if (!method) throw new Error(`LuaCommand ${this.name}: call defineOn(client) before client.pipeline()`);
    method.call(pipeline, keys.length, ...keys, ...args);
  }

  private method(target: Redis | Cluster | ChainableCommander, opts: LuaCallOptions): ScriptMethod {
    return (target as unknown as Record<string, ScriptMethod>)[opts.buffers ? `${this.name}Buffer` : this.name];
  }
}
