/**
 * What a vector carries besides its id, for filtered search: the tenant it belongs to, the deal it is
 * about, and when it was written (ms since the epoch). Every field is optional; an item without a field
 * never matches a filter on that field.
 */
export interface ItemMeta {
  tenant?: string;
  dealId?: string;
  /** Milliseconds since the epoch (an integer). */
  ts?: number;
}

/**
 * A search filter. Fields are ANDed; a list means "any of". `from` is inclusive, `to` exclusive.
 *
 * @example { tenant: 'acme', from: Date.parse('2026-01-01') }
 */
export interface SearchFilter {
  tenant?: string | readonly string[];
  dealId?: string | readonly string[];
  from?: number;
  to?: number;
}

/** True when the filter restricts anything (an empty object is no filter). */
export function isActiveFilter(filter: SearchFilter | undefined): filter is SearchFilter {
  return !!filter && (filter.tenant !== undefined || filter.dealId !== undefined || filter.from !== undefined || filter.to !== undefined);
}

/** Metadata of one namespace as saved in `mapping.json`, parallel to the mapping's `ids`/`keys`. */
export interface SavedMeta {
  tenants: string[];
  deals: string[];
  /** Per id: index into `tenants` plus one, 0 for none. */
  tenant: number[];
  deal: number[];
  /** Per id: ms since the epoch, or null. */
  ts: (number | null)[];
}

/** A compiled filter: `matches(key)` for candidates, `count()` for how many items match (selectivity). */
export interface CompiledFilter {
  matches(key: number): boolean;
  /** Items (of this namespace) that match. Exact. */
  count(): number;
  /** The keys that match, in key order (a scan of the columns; stops after `limit`). */
  keys(limit?: number): number[];
}

/** A string dictionary: each distinct value gets a small integer code (1-based; 0 = none) and a live count. */
class Dictionary {
  readonly values: string[] = [];
  readonly counts: number[] = [];
  private readonly codes = new Map<string, number>();

  code(value: string): number {
    let c = this.codes.get(value);
    if (c === undefined) {
      this.values.push(value);
      this.counts.push(0);
      this.codes.set(value, (c = this.values.length));
    }
    return c;
  }

  lookup(value: string): number | undefined {
    return this.codes.get(value);
  }
}

/**
 * Columnar metadata of one index, addressed by USearch key: two dictionary-coded columns (tenant, deal)
 * and one float64 column (ts), grown by doubling. 16 bytes per key, no object per item, so a predicate
 * over a million keys is a typed-array read per candidate. Deleted keys are cleared, never reused.
 */
export class ItemMetadata {
  private readonly tenants = new Dictionary();
  private readonly deals = new Dictionary();
  private tenant = new Int32Array(0);
  private deal = new Int32Array(0);
  private ts = new Float64Array(0);
  /** Highest key + 1 ever given metadata (the scan bound for time filters). */
  private end = 0;
  /** Keys holding any metadata: zero means filtered searches can answer "nothing" at once. */
  private withMeta = 0;

  get size(): number {
    return this.withMeta;
  }

  /** Sets (or, with `undefined`, clears) the metadata of `key`. */
  set(key: number, meta: ItemMeta | undefined): void {
    this.clear(key);
    if (!meta || (meta.tenant === undefined && meta.dealId === undefined && meta.ts === undefined)) return;
    this.ensure(key);
    if (meta.tenant !== undefined) {
      const c = this.tenants.code(meta.tenant);
      this.tenant[key] = c;
      this.tenants.counts[c - 1]++;
    }
    if (meta.dealId !== undefined) {
      const c = this.deals.code(meta.dealId);
      this.deal[key] = c;
      this.deals.counts[c - 1]++;
    }
    if (meta.ts !== undefined) this.ts[key] = meta.ts;
    this.end = Math.max(this.end, key + 1);
    this.withMeta++;
  }

  clear(key: number): void {
    if (key >= this.tenant.length) return;
    const t = this.tenant[key];
    const d = this.deal[key];
    const had = t !== 0 || d !== 0 || !Number.isNaN(this.ts[key]);
    if (t) this.tenants.counts[t - 1]--;
    if (d) this.deals.counts[d - 1]--;
    this.tenant[key] = 0;
    this.deal[key] = 0;
    this.ts[key] = NaN;
    if (had) this.withMeta--;
  }

  get(key: number): ItemMeta | undefined {
    if (key >= this.tenant.length) return undefined;
    const meta: ItemMeta = {};
    if (this.tenant[key]) meta.tenant = this.tenants.values[this.tenant[key] - 1];
    if (this.deal[key]) meta.dealId = this.deals.values[this.deal[key] - 1];
    if (!Number.isNaN(this.ts[key])) meta.ts = this.ts[key];
    return Object.keys(meta).length ? meta : undefined;
  }

  /**
   * Compiles a filter against this index's dictionaries. Values this index never saw match nothing, so
   * a filter naming only unknown tenants counts 0 without scanning.
   */
  compile(filter: SearchFilter): CompiledFilter {
    const codes = (dict: Dictionary, v: string | readonly string[] | undefined): Set<number> | undefined =>
      v === undefined ? undefined : new Set((typeof v === 'string' ? [v] : v).map((x) => dict.lookup(x)).filter((c): c is number => c !== undefined));
    const tenantCodes = codes(this.tenants, filter.tenant);
    const dealCodes = codes(this.deals, filter.dealId);
    const from = filter.from ?? -Infinity;
    const to = filter.to ?? Infinity;
    const timed = filter.from !== undefined || filter.to !== undefined;
    const { tenant, deal, ts } = this;
    const matches = (key: number): boolean => {
      if (key >= tenant.length) return false;
      if (tenantCodes && !tenantCodes.has(tenant[key])) return false;
      if (dealCodes && !dealCodes.has(deal[key])) return false;
      if (timed) {
        const t = ts[key];
        if (!(t >= from && t < to)) return false; // NaN (no timestamp) fails both
      }
      return true;
    };
    const count = (): number => {
      if (this.withMeta === 0 || tenantCodes?.size === 0 || dealCodes?.size === 0) return 0;
      // One dictionary field alone: the live counts answer without a scan.
      if (!timed && !dealCodes && tenantCodes) return [...tenantCodes].reduce((n, c) => n + this.tenants.counts[c - 1], 0);
      if (!timed && !tenantCodes && dealCodes) return [...dealCodes].reduce((n, c) => n + this.deals.counts[c - 1], 0);
      let n = 0;
      for (let key = 0; key < this.end; key++) if (matches(key)) n++;
      return n;
    };
    const keys = (limit = Infinity): number[] => {
      const out: number[] = [];
      if (this.withMeta === 0 || tenantCodes?.size === 0 || dealCodes?.size === 0) return out;
      for (let key = 0; key < this.end && out.length < limit; key++) if (matches(key)) out.push(key);
      return out;
    };
    return { matches, count, keys };
  }

  /** The metadata of `keys` (in that order) for `mapping.json`, or undefined when none carries any. */
  export(keys: readonly number[]): SavedMeta | undefined {
    if (this.withMeta === 0) return undefined;
    const saved: SavedMeta = { tenants: [...this.tenants.values], deals: [...this.deals.values], tenant: [], deal: [], ts: [] };
    for (const key of keys) {
      const inRange = key < this.tenant.length;
      saved.tenant.push(inRange ? this.tenant[key] : 0);
      saved.deal.push(inRange ? this.deal[key] : 0);
      saved.ts.push(inRange && !Number.isNaN(this.ts[key]) ? this.ts[key] : null);
    }
    return saved;
  }

  /** Restores what `export` wrote for `keys`. Throws on a malformed record (the snapshot is then refused). */
  import(keys: readonly number[], saved: SavedMeta, where: string): void {
    const { tenants, deals, tenant, deal, ts } = saved;
    if (![tenants, deals, tenant, deal, ts].every(Array.isArray) || tenant.length !== keys.length || deal.length !== keys.length || ts.length !== keys.length) {
      throw new Error(`metadata in ${where} is malformed (expected ${keys.length} rows)`);
    }
    const str = (list: string[], code: number, field: string): string | undefined => {
      if (code === 0) return undefined;
      const v = list[code - 1];
      if (typeof v !== 'string') throw new Error(`metadata in ${where}: ${field} code ${code} is not in its dictionary`);
      return v;
    };
    keys.forEach((key, i) => {
      const t = ts[i];
      this.set(key, { tenant: str(tenants, tenant[i], 'tenant'), dealId: str(deals, deal[i], 'deal'), ts: typeof t === 'number' ? t : undefined });
    });
  }

  private ensure(key: number): void {
    if (key < this.tenant.length) return;
    let cap = Math.max(1024, this.tenant.length);
    while (cap <= key) cap *= 2;
    const grow = <T extends Int32Array | Float64Array>(old: T, make: (n: number) => T, fill?: number): T => {
      const next = make(cap);
      if (fill !== undefined) next.fill(fill, old.length);
      next.set(old);
      return next;
    };
    this.tenant = grow(this.tenant, (n) => new Int32Array(n));
    this.deal = grow(this.deal, (n) => new Int32Array(n));
    this.ts = grow(this.ts, (n) => new Float64Array(n), NaN);
  }
}
