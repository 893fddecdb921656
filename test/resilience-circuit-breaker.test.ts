import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CircuitBreaker, type CircuitState } from '../src/resilience';
import { importsOf, sourceFiles } from './helpers/imports';

/** A breaker on a hand-moved clock, recording its state changes. */
function breakerAt(opts: { threshold?: number; resetMs?: number } = {}) {
  let t = 1_000;
  const changes: Array<Exclude<CircuitState, 'half-open'>> = [];
  const breaker = new CircuitBreaker({ ...opts, now: () => t, onStateChange: (s) => changes.push(s) });
  return {
    breaker,
    changes,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('circuit breaker (one state machine for the warehouse pool and the cache L2)', () => {
  it('opens after `threshold` consecutive counted failures and refuses calls while open', () => {
    const { breaker, changes } = breakerAt({ threshold: 3, resetMs: 1_000 });
    for (let i = 0; i < 2; i++) {
      expect(breaker.allow()).toBe(true);
      breaker.failure(new Error(`f${i}`));
    }
    expect(breaker.state).toBe('closed');
    const last = new Error('f2');
    breaker.failure(last);
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    expect(breaker.lastError).toBe(last);
    expect(breaker.retryInMs()).toBe(1_000);
    expect(breaker.opens).toBe(1);
    expect(changes).toEqual(['open']);
  });

  it('a success resets the count: failures must be consecutive', () => {
    const { breaker } = breakerAt({ threshold: 2 });
    breaker.failure();
    breaker.success();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
  });

  it('after resetMs lets exactly one probe through; its success closes the circuit', () => {
    const { breaker, changes, advance } = breakerAt({ threshold: 1, resetMs: 500 });
    breaker.failure();
    advance(499);
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs()).toBe(1);
    advance(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.retryInMs()).toBe(0);
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.allow()).toBe(false); // everyone else while it runs
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    expect(changes).toEqual(['open', 'closed']);
  });

  it('a failed probe opens it for another resetMs (counted in `opens`, no second open event)', () => {
    const { breaker, changes, advance } = breakerAt({ threshold: 5, resetMs: 500 });
    for (let i = 0; i < 5; i++) breaker.failure();
    advance(500);
    expect(breaker.allow()).toBe(true);
    breaker.failure(new Error('probe'));
    expect(breaker.state).toBe('open');
    expect(breaker.retryInMs()).toBe(500);
    expect(breaker.opens).toBe(2);
    expect(changes).toEqual(['open']);
  });

  it('a failure that does not count (the dependency answered) leaves the count alone, and closes the circuit if it was the probe', () => {
    const { breaker, changes, advance } = breakerAt({ threshold: 2, resetMs: 100 });
    breaker.failure(new Error('timeout'));
    breaker.failure(new Error('SQL error'), false);
    expect(breaker.state).toBe('closed');
    breaker.failure(new Error('timeout'));
    expect(breaker.state).toBe('open'); // two consecutive *counted* failures
    advance(100);
    expect(breaker.allow()).toBe(true);
    breaker.failure(new Error('SQL error'), false);
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['open', 'closed']);
  });

  it('a call that fails after the circuit opened restarts the cool-down without another open event', () => {
    const { breaker, changes, advance } = breakerAt({ threshold: 1, resetMs: 100 });
    breaker.failure();
    advance(60);
    breaker.failure(); // an older call, in flight when the circuit opened
    advance(60);
    expect(breaker.state).toBe('open');
    expect(breaker.opens).toBe(1);
    expect(changes).toEqual(['open']);
  });

  it('ignores a throwing state-change listener', () => {
    const breaker = new CircuitBreaker({
      threshold: 1,
      onStateChange: () => {
        throw new Error('listener');
      },
    });
    expect(() => breaker.failure()).not.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('defaults to 5 failures and 10 s, and rejects bad options naming the option and the value', () => {
    let t = 0;
    const breaker = new CircuitBreaker({ now: () => t });
    for (let i = 0; i < 4; i++) breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.retryInMs()).toBe(10_000);
    t = 10_000;
    expect(breaker.state).toBe('half-open');
    expect(() => new CircuitBreaker({ threshold: 0 })).toThrow(/option `threshold` must be an integer >= 1, got 0/);
    expect(() => new CircuitBreaker({ threshold: 1.5 })).toThrow(/`threshold`.*1\.5/);
    expect(() => new CircuitBreaker({ resetMs: 0 })).toThrow(/option `resetMs` must be > 0, got 0/);
    expect(() => new CircuitBreaker({ onStateChange: 'log' as never })).toThrow(/`onStateChange`/);
  });
});

describe('src/ has one circuit breaker', () => {
  it('no breaker class outside src/resilience', () => {
    const ROOT = path.join(__dirname, '..');
    const offenders = sourceFiles(path.join(ROOT, 'src'))
      .filter((file) => !file.startsWith(path.join(ROOT, 'src', 'resilience') + path.sep))
      .flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/class\s+\w*Breaker\b/g)].map((m) => `${path.relative(ROOT, file)}: ${m[0]}`));
    expect(offenders).toEqual([]);
  });

  it('src/resilience imports nothing of the fleet, so every part (pool, cache, telemetry, http) may use it', () => {
    const ROOT = path.join(__dirname, '..');
    const DIR = path.join(ROOT, 'src', 'resilience');
    const outside = sourceFiles(DIR).flatMap((file) =>
      importsOf(readFileSync(file, 'utf8'))
        .filter(
          (r) => !r.specifier.startsWith('node:') && !(r.specifier.startsWith('.') && path.resolve(path.dirname(file), r.specifier).startsWith(DIR + path.sep)),
        )
        .map((r) => `${path.relative(ROOT, file)}: ${r.specifier}`),
    );
    expect(outside).toEqual([]);
  });
});
