import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeadlineExceededError, withDeadline, withDeadlineOr } from '../src/resilience';
import { sourceFiles } from './helpers/imports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const later = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));
const laterReject = (ms: number, err: Error) => new Promise<never>((_, reject) => setTimeout(() => reject(err), ms));
/** Timers alive in this process now (each deadline is one until it is cleared). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('withDeadline (the one deadline helper)', () => {
  it('resolves with the work when it settles in time, and clears its timer at once', async () => {
    const before = timers();
    await expect(withDeadline(Promise.resolve(7), 60_000, 'answer')).resolves.toBe(7);
    expect(timers()).toBe(before);
  });

  it("passes the work's own rejection through, and clears its timer", async () => {
    const before = timers();
    const err = new Error('boom');
    await expect(withDeadline(Promise.reject(err), 60_000, 'answer')).rejects.toBe(err);
    expect(timers()).toBe(before);
  });

  it('rejects with a DeadlineExceededError naming what did not answer', async () => {
    const err = await withDeadline(later(300, 'late'), 20, 'getJobCounts(q)').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(err).toMatchObject({
      name: 'DeadlineExceededError',
      what: 'getJobCounts(q)',
      timeoutMs: 20,
      message: 'getJobCounts(q) did not answer within 20 ms',
    });
  });

  it("rejects with the caller's own error when given a factory", async () => {
    class Unavailable extends Error {}
    await expect(withDeadline(later(300, 'late'), 20, () => new Unavailable('L2 read: timeout'))).rejects.toBeInstanceOf(Unavailable);
  });

  it('a rejection of the work after the deadline is handled (never an unhandled rejection)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(withDeadline(laterReject(40, new Error('late failure')), 10, 'x')).rejects.toBeInstanceOf(DeadlineExceededError);
      await sleep(80);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects a bad deadline before starting a timer', () => {
    expect(() => withDeadline(Promise.resolve(1), -1, 'x')).toThrow(/ms must be .* got -1/);
    expect(() => withDeadline(Promise.resolve(1), Number.NaN, 'x')).toThrow(RangeError);
    expect(() => withDeadline(Promise.resolve(1), 2 ** 31, 'x')).toThrow(RangeError);
  });
});

describe('withDeadlineOr (a deadline that answers a fallback)', () => {
  it("answers the work's value in time, the fallback after the deadline, and clears its timer either way", async () => {
    const before = timers();
    await expect(withDeadlineOr(Promise.resolve(true), 60_000, false)).resolves.toBe(true);
    expect(timers()).toBe(before);
    const t = Date.now();
    await expect(withDeadlineOr(later(300, true), 20, false)).resolves.toBe(false);
    expect(Date.now() - t).toBeLessThan(250);
  });

  it('still rejects when the work fails in time', async () => {
    await expect(withDeadlineOr(Promise.reject(new Error('no session')), 1_000, false)).rejects.toThrow('no session');
  });
});

describe('src/ races promises against timers only through src/resilience/deadline.ts', () => {
  const ROOT = path.join(__dirname, '..');
  /**
   * Files with a hand-written deadline still to be moved to withDeadline. src/http was being edited by another
   * change when the others moved; drop an entry once its file uses the helper.
   */
  const PENDING = new Set<string>();
  it('no Promise.race with a setTimeout, and no own withTimeout/withDeadline, anywhere else', () => {
    const offenders = sourceFiles(path.join(ROOT, 'src'))
      .map((file) => path.relative(ROOT, file).split(path.sep).join('/'))
      .filter((file) => !file.startsWith('src/resilience/') && !PENDING.has(file))
      .flatMap((file) => {
        const code = readFileSync(path.join(ROOT, file), 'utf8');
        const races = [...code.matchAll(/Promise\.race\(/g)].filter((m) => /setTimeout\(/.test(code.slice(m.index, m.index + 400)));
        const helpers = [...code.matchAll(/function\s+(withTimeout|withDeadline|deadline|timeout)\b/g)];
        return [...races, ...helpers].map((m) => `${file}: ${m[0]}`);
      });
    expect(offenders).toEqual([]);
  });
});
