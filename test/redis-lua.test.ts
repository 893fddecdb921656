import { readFileSync } from 'node:fs';
import path from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { BuilderLease } from '../src/index-builder/builder-lease';
import { appendUpsertsOnce, indexLogKey } from '../src/index-builder/upsert-stream';
import { LuaCommand } from '../src/redis-lua/lua-command';
import { sourceFiles } from './helpers/imports';
import { testRedisUrl, uniquePrefix } from './helpers/redis';

/** EVAL and EVALSHA calls the test Redis has served so far: the suite runs in band, so a delta is ours. */
async function scriptCalls(admin: Redis): Promise<{ eval: number; evalsha: number }> {
  const info = await admin.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

async function delta(admin: Redis, run: () => Promise<unknown>): Promise<{ eval: number; evalsha: number }> {
  const before = await scriptCalls(admin);
  await run();
  const after = await scriptCalls(admin);
  return { eval: after.eval - before.eval, evalsha: after.evalsha - before.evalsha };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LuaCommand (the one way the fleet runs Lua: ioredis defineCommand)', () => {
  let admin: Redis;
  let client: Redis;

  beforeEach(() => {
    admin = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null });
    client = new IORedis(testRedisUrl(), { maxRetriesPerRequest: null }); // fresh: no script sent on it yet
  });
  afterEach(async () => {
    await Promise.all([admin.quit(), client.quit()]);
  });

  it('sends the text once per connection (EVAL), then only the sha (EVALSHA)', async () => {
    const key = `${uniquePrefix('lua')}:n`;
    const incr = new LuaCommand('fleetTestIncrBy', `return redis.call('INCRBY', KEYS[1], ARGV[1])`);
    const calls = await delta(admin, async () => {
      for (let i = 0; i < 100; i++) await incr.run(client, [key], [2]);
    });
    expect(await admin.get(key)).toBe('200');
    expect(calls).toEqual({ eval: 1, evalsha: 99 });
    await admin.del(key);
  });

  it('answers Buffers when asked, and queues on a pipeline of a client it is defined on', async () => {
    const key = `${uniquePrefix('lua')}:b`;
    await admin.set(key, Buffer.from([0xff, 0x00, 0x01]));
    const get = new LuaCommand('fleetTestGet', `return redis.call('GET', KEYS[1])`);
    expect(await get.run(client, [key], [], { buffers: true })).toEqual(Buffer.from([0xff, 0x00, 0x01]));
    const p = client.pipeline();
    get.queue(p, [key], [], { buffers: true });
    get.queue(p, [key], []);
    const replies = await p.exec();
    expect(replies?.[0]).toEqual([null, Buffer.from([0xff, 0x00, 0x01])]);
    expect(typeof replies?.[1][1]).toBe('string');
    const other = new IORedis(testRedisUrl(), { lazyConnect: true });
    expect(() => get.queue(other.pipeline(), [key], [])).toThrow(/defineOn\(client\) before client\.pipeline\(\)/);
    other.disconnect();
    await admin.del(key);
  });

  it('refuses a name that could shadow a command, and a second script under the same name on one client', async () => {
    expect(() => new LuaCommand('get', 'return 1')).toThrow(/name must match/);
    expect(() => new LuaCommand('fleetEmpty', '  ')).toThrow(/lua must be/);
    const a = new LuaCommand('fleetTestSame', 'return 1');
    a.defineOn(client);
    a.defineOn(client); // idempotent
    new LuaCommand('fleetTestSame', 'return 1').defineOn(client); // same script, another instance: fine
    expect(() => new LuaCommand('fleetTestSame', 'return 2').defineOn(client)).toThrow(/another script is already defined as fleetTestSame/);
    expect(await a.run(client, [], [])).toBe(1);
  });

  it('the builder lease renews and releases with EVALSHA after the first call', async () => {
    const key = `${uniquePrefix('lease')}:index:builder`;
    const lost: Error[] = [];
    const lease = new BuilderLease(client, key, 300, (err) => lost.push(err)); // renewed every 100 ms
    const calls = await delta(admin, async () => {
      await lease.acquire(1_000);
      await sleep(650);
      await lease.release();
    });
    expect(lost).toEqual([]);
    expect(await admin.exists(key)).toBe(0);
    expect(calls.eval).toBeLessThanOrEqual(2); // renew's and release's texts, once each on this connection
    expect(calls.evalsha).toBeGreaterThanOrEqual(4);
  });

  it('appendUpsertsOnce sends its script text once over many calls', async () => {
    const prefix = uniquePrefix('lua-log');
    const calls = await delta(admin, async () => {
      for (let i = 0; i < 50; i++) {
        await appendUpsertsOnce(client, prefix, [{ id: `i${i}`, vector: [1, 0], jobKey: `${prefix}:q:${i}`, jobId: String(i) }]);
      }
    });
    expect(await admin.xlen(indexLogKey(prefix))).toBe(50);
    expect(calls).toEqual({ eval: 1, evalsha: 49 });
    await admin.del(indexLogKey(prefix));
  });
});

describe('every Lua script of src/ goes through LuaCommand', () => {
  const ROOT = path.join(__dirname, '..');
  const OWN = path.join(ROOT, 'src', 'redis-lua');
  it('no EVAL, EVALSHA, SCRIPT LOAD or defineCommand outside src/redis-lua', () => {
    const offenders = sourceFiles(path.join(ROOT, 'src'))
      .filter((file) => !file.startsWith(OWN + path.sep))
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .flatMap((line, i) =>
            /\.(eval|evalsha|evalBuffer|evalshaBuffer|script|defineCommand)\(|['"](EVAL|EVALSHA|eval|evalsha)['"]/.test(line)
              ? [`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`]
              : [],
          ),
      );
    expect(offenders).toEqual([]);
  });
});
