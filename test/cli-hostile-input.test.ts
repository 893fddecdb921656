/**
 * Issue #9, hostile input, through the CLI (`node bin/fleet.js enqueue …`, needs `dist/`: `npm test` builds it
 * first): the one list of cases in test/helpers/hostile-input.ts, as test/hostile-input.test.ts sends it over
 * HTTP and the library. A refused case must exit non-zero with one line naming the field and the problem and
 * no stack trace; an accepted one is enqueued unchanged and completed by real workers. One process per case
 * (about 1.5 s of CPU each to load the CLI), so this file is in `npm test` only (jest.fast.config.js).
 */

import { applicable, type CliInput, fields, hostileInputRun } from './helpers/hostile-input';
import { type Finished, launchFleet } from './helpers/processes';
import { testRedisUrl } from './helpers/redis';

const hostile = hostileInputRun(['cli']);
const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(node:)/m;

// ---- surface 3: the CLI -------------------------------------------------------------------------------
type CliRun = Finished;
/** `fleet enqueue …args` to its end (SIGKILLed after 45 s, which the run's `signal` shows). */
function runCli(args: string[]): Promise<CliRun> {
  return launchFleet(['enqueue', ...args], { env: { REDIS_URL: testRedisUrl(), FLEET_QUEUE_PREFIX: hostile.prefix, LOG_LEVEL: 'warn' } }).finished(45_000);
}

describe('hostile input through the CLI (node bin/fleet.js enqueue …)', () => {
  const runs = new Map<string, CliRun>();
  beforeAll(async () => {
    // All spawns up front, a few at a time (each one loads the CLI: about a second of CPU).
    const todo = applicable('cli');
    const next = async () => {
      for (let item = todo.shift(); item; item = todo.shift()) runs.set(item[0], await runCli((item[1].cli as CliInput).args));
    };
    await Promise.all(Array.from({ length: 3 }, next));
  }, 180_000);

  it.each(applicable('cli'))('%s', async (name, c) => {
    const cl = c.cli as CliInput;
    const run = runs.get(name)!;
    expect(run.signal).toBeNull();
    expect(run.stderr).not.toMatch(STACK_TRACE);
    if (c.verdict === 'accepted') {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^enqueued /) });
      const ids = [...run.stderr.matchAll(/^enqueued (\w+)\/(\S+)$/gm)].map((m) => {
        expect(m[1]).toBe(c.queue);
        return m[2];
      });
      await hostile.recordAccepted(c, 'cli', ids, cl.jobIds);
      hostile.note(name, 'cli', `exit 0, enqueued ${ids.length}`);
      return;
    }
    const message = cl.message ?? c.message!;
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: cl.exit ?? 2, stderr: expect.stringMatching(message) });
    for (const f of fields(cl.field ?? c.field)) expect(run.stderr).toContain(`${f}: `);
    expect(run.stderr).not.toMatch(/^enqueued /m); // the "enqueued <queue>/<id>" line (the help text may say "nothing was enqueued")
    expect(run.stdout).toBe('');
    hostile.note(
      name,
      'cli',
      `exit ${run.code}: ${run.stderr
        .split('\n')[0]
        .replace(/^(fleet enqueue: invalid input: |error: )/, '')
        .slice(0, 48)}`,
    );
  });
});

hostile.describeAfterwards();
