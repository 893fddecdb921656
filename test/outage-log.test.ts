import { closeRedis, dropRedis, RedisConnections } from '../src/app/redis';
import { type PrivateRedis, startPrivateRedis } from '../src/app/redis-server';
import { dependencyLog, isConnectionError } from '../src/telemetry/outage-log';
import { captureLogs } from './helpers/logs';
import { waitUntil } from './helpers/wait';

/** A logger writing JSON lines into memory. */
const capture = () => captureLogs({ traceIds: false });

/** An error as a socket reports a server that is not there. */
function refused(port = 6379): Error {
  return Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
}

describe('dependencyLog: one outage, a few lines', () => {
  afterEach(() => jest.useRealTimers());

  it('logs one line when the dependency goes away, one summary per interval with the suppressed count, one line when it returns', () => {
    jest.useFakeTimers();
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'redis', summaryEveryMs: 30_000 });
    for (let i = 0; i < 7; i++) log.failed(refused());
    expect(log.down).toBe(true);
    jest.advanceTimersByTime(30_000);
    for (let i = 0; i < 5; i++) log.failed(refused());
    jest.advanceTimersByTime(30_000);
    log.recovered();
    log.recovered();
    log.close();

    expect(lines().map((l) => l.msg)).toEqual([
      'redis unavailable; further connection errors are counted, not logged, until it returns',
      'redis still unavailable',
      'redis still unavailable',
      'redis available again',
    ]);
    const [down, first, second, back] = lines();
    expect(down).toMatchObject({ level: 40, dependency: 'redis' });
    expect(down.err).toEqual({ message: 'connect ECONNREFUSED 127.0.0.1:6379', code: 'ECONNREFUSED' });
    expect(first).toMatchObject({ suppressed: 6, downForMs: 30_000, lastError: { code: 'ECONNREFUSED' } });
    expect(second).toMatchObject({ suppressed: 5, downForMs: 60_000 });
    expect(back).toMatchObject({ level: 30, dependency: 'redis', downForMs: 60_000 });
    expect(log.down).toBe(false);
  });

  it('writes no summary for an interval without failures, and no line at all while the dependency is up', () => {
    jest.useFakeTimers();
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'warehouse', summaryEveryMs: 1_000 });
    log.recovered();
    log.failed(refused());
    jest.advanceTimersByTime(5_000);
    log.close();
    expect(lines().map((l) => l.msg)).toEqual(['warehouse unavailable; further connection errors are counted, not logged, until it returns']);
  });

  it('an expected failure that is not a connection error (a cache L2 timeout) is logged without a stack too', () => {
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'cache L2', isOutage: (err) => (err as { reason?: string }).reason === 'timeout' });
    log.failed(Object.assign(new Error('cache L2 read failed: timeout'), { reason: 'timeout' }), { cache: 'emb' });
    log.close();
    expect(lines()[0].err).toEqual({ message: 'cache L2 read failed: timeout' });
  });

  it('a second outage after a recovery is reported again', () => {
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'cache L2' });
    log.failed(refused());
    log.recovered();
    log.failed(refused());
    log.close();
    expect(lines().map((l) => l.msg.split(';')[0])).toEqual(['cache L2 unavailable', 'cache L2 available again', 'cache L2 unavailable']);
  });

  it('an unexpected error is logged in full every time and does not mark the dependency down', () => {
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'redis' });
    log.failed(new Error('ERR Error running script: missing lock'), { queue: 'embeddings' });
    log.failed(new Error('ERR Error running script: missing lock'), { queue: 'embeddings' });
    log.close();
    expect(log.down).toBe(false);
    expect(lines()).toHaveLength(2);
    expect(lines()[0]).toMatchObject({ level: 50, msg: 'redis error', queue: 'embeddings' });
    expect((lines()[0].err as { stack: string }).stack).toMatch(/missing lock\n\s+at /);
  });

  it('tells listeners when the dependency goes down, once per outage', () => {
    const { logger } = capture();
    const log = dependencyLog(logger, { name: 'redis' });
    let downs = 0;
    const off = log.onDown(() => downs++);
    log.failed(refused());
    log.failed(refused());
    log.recovered();
    log.failed(refused());
    off();
    log.recovered();
    log.failed(refused());
    log.close();
    expect(downs).toBe(2);
  });

  it('uses the given outage test (the warehouse: its unavailable codes, not SQL errors)', () => {
    const { logger, lines } = capture();
    const unavailable = (err: unknown) => (err as { transient?: boolean }).transient === true;
    const log = dependencyLog(logger, { name: 'warehouse', isOutage: unavailable });
    log.failed(Object.assign(new Error('no warehouse session within 3000 ms'), { transient: true }));
    log.failed(Object.assign(new Error('SQL compilation error'), { transient: false }));
    log.close();
    expect(lines().map((l) => l.msg)).toEqual([
      'warehouse unavailable; further connection errors are counted, not logged, until it returns',
      'warehouse error',
    ]);
  });

  it('refuses a bad summary interval, naming the option and the value', () => {
    const { logger } = capture();
    expect(() => dependencyLog(logger, { name: 'redis', summaryEveryMs: 0 })).toThrow('dependencyLog: option `summaryEveryMs` must be an integer >= 1, got 0');
  });
});

describe('expected connection errors', () => {
  it.each([
    ['refused', refused()],
    ['reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['timed out', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })],
    ['unreachable', Object.assign(new Error('connect EHOSTUNREACH 10.0.0.1:6379'), { code: 'EHOSTUNREACH' })],
    ['closed (ioredis)', new Error('Connection is closed.')],
    ['no cluster node reachable (ioredis Cluster)', new Error('None of startup nodes is available')],
    [
      'a pipeline cut by a closing connection (ioredis AbortError)',
      Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' }),
    ],
    [
      'out of retries while reconnecting (ioredis)',
      new Error('Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.'),
    ],
    ['a network code in the message only', new Error('write EPIPE')],
    ['wrapped', new Error('cache L2 get failed: error', { cause: refused() })],
  ])('%s is an expected connection error', (_name, err) => {
    expect(isConnectionError(err)).toBe(true);
  });

  it.each([
    ['a script error', new Error('ERR Error running script')],
    ['a wrong password', new Error('WRONGPASS invalid username-password pair or user is disabled.')],
    ['not an error', 'ECONNREFUSED'],
    [
      'an AbortError that is a bug (ioredis cluster pub/sub)',
      Object.assign(new Error('Possible CROSSSLOT error: All channels must hash to the same slot'), { name: 'AbortError' }),
    ],
  ])('%s is not', (_name, err) => {
    expect(isConnectionError(err)).toBe(false);
  });

  it('the logger writes an expected connection error without its stack, any other error with it', () => {
    const { logger, lines } = capture();
    logger.warn({ err: refused() }, 'subscription error');
    logger.warn({ err: new TypeError('undefined is not a function') }, 'bug');
    const [expected, bug] = lines();
    expect(expected.err).toEqual({ message: 'connect ECONNREFUSED 127.0.0.1:6379', code: 'ECONNREFUSED' });
    expect((bug.err as { stack: string }).stack).toMatch(/TypeError: undefined is not a function\n\s+at /);
  });
});

describe('RedisConnections: every connection of a process reports to one log', () => {
  let server: PrivateRedis | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('ten connections (and their duplicates) losing Redis make one line; the first to reconnect makes one more', async () => {
    server = await startPrivateRedis();
    const { logger, lines, text } = capture();
    const log = dependencyLog(logger, { name: 'redis', summaryEveryMs: 60_000 });
    const connections = new RedisConnections({ url: server.url }, log);
    const opened = Array.from({ length: 5 }, () => connections.create());
    opened.push(...opened.map((c) => c.duplicate()));
    await Promise.all(opened.map((c) => c.ping()));
    const port = server.port;
    await server.stop();
    await waitUntil('every connection saw Redis go', () => opened.every((c) => c.status !== 'ready'));
    await waitUntil('a reconnect attempt failed', () => log.down);
    server = await startPrivateRedis({ port });
    await waitUntil('every connection is back', () => opened.every((c) => c.status === 'ready'), { timeoutMs: 15_000 });
    await Promise.all(opened.map((c) => closeRedis(c)));
    log.close();
    expect(lines().map((l) => l.msg.split(';')[0])).toEqual(['redis unavailable', 'redis available again']);
    expect(text()).not.toContain('"stack"');
  });

  it("a 'ready' handled after the outage began is not taken for recovery: only a command Redis answers is", async () => {
    server = await startPrivateRedis();
    const { logger, lines } = capture();
    const log = dependencyLog(logger, { name: 'redis', summaryEveryMs: 60_000 });
    const connections = new RedisConnections({ url: server.url }, log);
    const late = connections.create();
    await late.ping();
    const port = server.port;
    await server.stop();
    await waitUntil('the connection saw Redis go', () => log.down && late.status !== 'ready');
    // The race as a loaded process meets it: a handshake answered just before the crash, its 'ready' handled
    // after another connection's failure.
    late.emit('ready');
    const downAtReady = log.down;
    // Dropping it fails the check its 'ready' sent (Redis is not there to answer): still down.
    dropRedis(late);
    await new Promise((resolve) => setImmediate(resolve));
    expect({ downAtReady, downAfterCheck: log.down }).toEqual({ downAtReady: true, downAfterCheck: true });
    server = await startPrivateRedis({ port });
    const fresh = connections.create();
    await waitUntil('a connection answered after Redis came back', () => !log.down);
    await closeRedis(fresh);
    log.close();
    expect(lines().map((l) => l.msg.split(';')[0])).toEqual(['redis unavailable', 'redis available again']);
  });

  it('dropping a connection that waits to reconnect rejects its queued commands at once and ends it', async () => {
    server = await startPrivateRedis();
    const { logger } = capture();
    const log = dependencyLog(logger, { name: 'redis' });
    const connections = new RedisConnections({ url: server.url }, log);
    const connection = connections.create();
    await connection.ping();
    await server.stop();
    await waitUntil('the connection waits to reconnect', () => connection.status === 'reconnecting');
    // maxRetriesPerRequest null: without the drop this command would wait for Redis forever.
    const queued = connection.get('k').catch((e: Error) => e);
    dropRedis(connection);
    expect(await queued).toMatchObject({ message: 'Connection is closed.' });
    await waitUntil('the connection ended', () => connection.status === 'end');
    // Closing it again (as its releaser does) is a no-op, not a wait.
    await closeRedis(connection);
    log.close();
  });
});
