import type { Counter, Meter, ObservableGauge } from '@opentelemetry/api';
import type { BufferStats } from './outage-buffer';

interface Instruments {
  gauge: ObservableGauge;
  dropped: Counter;
  live: Set<{ prefix: string; stats: () => BufferStats }>;
}

// One set of instruments per meter: a second producer in the process adds itself to the gauge's sum
// instead of registering an instrument twice (the SDK would keep only one observation per attribute set).
const byMeter = new WeakMap<Meter, Instruments>();

function instruments(meter: Meter): Instruments {
  let found = byMeter.get(meter);
  if (!found) {
    const live: Instruments['live'] = new Set();
    const gauge = meter.createObservableGauge('fleet_producer_buffered_jobs', {
      description: "Enqueues held in producers' memory while Redis is unreachable (flushed in order on reconnect)",
    });
    gauge.addCallback((result) => {
      const sums = new Map<string, number>();
      for (const p of live) sums.set(p.prefix, (sums.get(p.prefix) ?? 0) + p.stats().bufferedJobs);
      for (const [prefix, jobs] of sums) result.observe(jobs, { prefix });
    });
    const dropped = meter.createCounter('fleet_producer_dropped_jobs', {
      description: 'Buffered enqueues dropped before they reached Redis (aborted, producer closed, refused by Redis)',
    });
    found = { gauge, dropped, live };
    byMeter.set(meter, found);
  }
  return found;
}

/** Registers a producer's buffer on the meter; the returned functions count drops and unregister it. */
export function observeBuffer(meter: Meter, prefix: string, stats: () => BufferStats): { dropped(jobs: number): void; stop(): void } {
  const ins = instruments(meter);
  const me = { prefix, stats };
  ins.live.add(me);
  return {
    dropped: (jobs) => ins.dropped.add(jobs, { prefix }),
    stop: () => ins.live.delete(me),
  };
}
