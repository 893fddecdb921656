import type { Job, JobsOptions, Queue } from 'bullmq';
import { tenantOfData } from '../contracts/tenants';
import type { TenantLanes } from '../fairness';

/** One job as `Queue.addBulk` takes it. */
export interface BulkJob {
  name: string;
  data: { tenant?: string };
  opts: JobsOptions;
}

interface Pending {
  jobs: BulkJob[];
  resolve(jobs: Job[]): void;
  reject(err: unknown): void;
}

/** Jobs in one `addBulk` (a single call larger than this still goes whole). */
const MAX_BULK = 1_000;

/**
 * Gathers the adds made during one turn of the event loop (the HTTP requests read in one poll phase, a
 * caller's burst of `embed` calls) and sends them together: one tenant admission script call (each
 * admission all-or-nothing on its own) and one `addBulk`. Under load a request then costs a share of two
 * round trips instead of two of its own; alone, it pays the same two. Each call still settles on its own:
 * its jobs, its TenantLimitError, or the connection's error (the outage gate re-sends it; ids make that a
 * no-op for what already happened).
 */
export class AddBatcher {
  private readonly pending = new Map<Queue, Pending[]>();
  private readonly inFlight = new Set<Promise<void>>();
  private scheduled = false;

  constructor(private readonly lanesOf: (queue: Queue) => TenantLanes | undefined) {}

  /** Adds `jobs` (all of one tenant, one caller's call) to `queue` with the next flush. */
  add(queue: Queue, jobs: BulkJob[]): Promise<Job[]> {
    return new Promise<Job[]>((resolve, reject) => {
      let list = this.pending.get(queue);
      if (!list) {
        list = [];
        this.pending.set(queue, list);
      }
      list.push({ jobs, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Sends what is gathered now and resolves once every add sent so far has settled (a closing producer). */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private readonly flush = () => {
    this.scheduled = false;
    const all = [...this.pending];
    this.pending.clear();
    for (const [queue, calls] of all) this.track(this.send(queue, calls));
  };

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async send(queue: Queue, calls: Pending[]): Promise<void> {
    let admitted = calls;
    let placed = calls.map((c) => c.jobs);
    const lanes = this.lanesOf(queue);
    if (lanes) {
      let answers: Awaited<ReturnType<TenantLanes['admitMany']>>;
      try {
        answers = await lanes.admitMany(
          calls.map((c) => ({ tenant: tenantOfData(c.jobs[0].data), ids: c.jobs.map((j) => j.opts.jobId!), pinned: c.jobs[0].opts.priority !== undefined })),
        );
      } catch (err) {
        for (const c of calls) c.reject(err);
        return;
      }
      admitted = [];
      placed = [];
      calls.forEach((c, i) => {
        const a = answers[i];
        if (a instanceof Error) {
          c.reject(a);
          return;
        }
        admitted.push(c);
        // A parked job gets its place as its priority; a caller's own priority is kept (it only counts).
        placed.push(
          c.jobs[0].opts.priority !== undefined ? c.jobs : c.jobs.map((j, k) => (a[k] === undefined ? j : { ...j, opts: { ...j.opts, priority: a[k] } })),
        );
      });
    }
    // Chunks of whole calls up to MAX_BULK jobs.
    let i = 0;
    while (i < admitted.length) {
      const chunk: Pending[] = [];
      const jobs: BulkJob[] = [];
      do {
        chunk.push(admitted[i]);
        jobs.push(...placed[i]);
        i++;
      } while (i < admitted.length && jobs.length + placed[i].length <= MAX_BULK);
      this.track(this.addChunk(queue, chunk, jobs));
    }
  }

  private async addChunk(queue: Queue, calls: Pending[], jobs: BulkJob[]): Promise<void> {
    try {
      // One job: a plain add (addBulk wraps even one job in MULTI, about 3x the CPU); several: one round trip.
      const added = jobs.length === 1 ? [await queue.add(jobs[0].name, jobs[0].data, jobs[0].opts)] : await queue.addBulk(jobs);
      let k = 0;
      for (const c of calls) {
        c.resolve(added.slice(k, k + c.jobs.length));
        k += c.jobs.length;
      }
    } catch (err) {
      for (const c of calls) c.reject(err);
    }
  }
}
