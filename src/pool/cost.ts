/**
 * What the fleet's statements cost, in Snowflake credits, counted as they run.
 *
 * Warehouse time: a warehouse bills by the second while it runs, however many statements share it. So a
 * statement is charged its *share* of the time this process kept the warehouse busy: while n statements
 * are in flight, each accrues 1/n of every second (processor sharing). Summed over statements this is
 * exactly the process's busy time, so concurrent batches are not counted twice. Statements of other
 * processes on the same warehouse, idle time before auto-suspend and the 60-second minimum per resume
 * are not the fleet's to attribute and are left out.
 *
 * Cortex: credits per million tokens of input. Tokens are estimated as Snowflake documents them (about
 * four characters a token), from the input texts the fleet sends or from a character count the statement
 * returns (`charsColumn`) when the texts stay in the warehouse.
 */

/** Prices (credits). */
export interface CostPrices {
  /** Credits per hour of the warehouse the statements run on. */
  warehouseCreditsPerHour: number;
  /** Credits per million tokens by `FUNCTION` or `FUNCTION:model` (the more specific key wins). */
  cortexCreditsPerMTokens: Readonly<Record<string, number>>;
}

/** Cumulative figures of one queue (or `none` for statements no queue asked for). */
export interface CostTotals {
  statements: number;
  warehouseSeconds: number;
  warehouseCredits: number;
  cortexTokens: number;
  cortexCredits: number;
}

/** Characters to tokens, as Snowflake documents the estimate (a token is about four characters). */
export const estimateTokens = (chars: number): number => Math.ceil(chars / 4);

const zero = (): CostTotals => ({ statements: 0, warehouseSeconds: 0, warehouseCredits: 0, cortexTokens: 0, cortexCredits: 0 });

/**
 * Counts credits per queue for one process's statements. `begin` when a statement is sent, `end` when
 * its result (or error) is in.
 *
 * @example
 *   const token = meter.begin();
 *   … run the statement …
 *   meter.end(token, 'embeddings', [{ function: 'EMBED_TEXT_768', model: 'e5-base-v2', inputChars: 51_200 }]);
 */
export class CostMeter {
  private inFlight = 0;
  /** Σ dt / inFlight over the time at least one statement was in flight, in seconds. */
  private shareClock = 0;
  private last: number;
  private readonly byQueue = new Map<string, CostTotals>();
  private readonly now: () => number;

  /** `now` (ms) is injectable for tests; default `performance.now`. */
  constructor(
    private readonly prices: CostPrices,
    now: () => number = () => performance.now(),
  ) {
    if (!(prices?.warehouseCreditsPerHour >= 0))
      throw new RangeError(`CostMeter: warehouseCreditsPerHour must be >= 0, got ${prices?.warehouseCreditsPerHour}`);
    this.now = now;
    this.last = now();
  }

  /** A statement was sent; returns the token to pass to `end`. */
  begin(): number {
    this.advance();
    this.inFlight++;
    return this.shareClock;
  }

  /** The statement ended: charges its share of warehouse time and its Cortex input to `queue`. */
  end(token: number, queue: string, cortex: readonly { function: string; model?: string; chars: number }[] = []): void {
    this.advance();
    this.inFlight = Math.max(0, this.inFlight - 1);
    const t = this.byQueue.get(queue) ?? zero();
    const seconds = this.shareClock - token;
    t.statements++;
    t.warehouseSeconds += seconds;
    t.warehouseCredits += (seconds * this.prices.warehouseCreditsPerHour) / 3600;
    for (const c of cortex) {
      const tokens = estimateTokens(c.chars);
      t.cortexTokens += tokens;
      t.cortexCredits += (tokens / 1e6) * this.cortexPrice(c.function, c.model);
    }
    this.byQueue.set(queue, t);
  }

  /** Credits per million tokens of a function and model; 0 for one without a price (never guessed). */
  cortexPrice(fn: string, model?: string): number {
    const p = this.prices.cortexCreditsPerMTokens;
    return (model !== undefined ? p[`${fn}:${model}`] : undefined) ?? p[fn] ?? 0;
  }

  /** Cumulative totals per queue since start (copies). */
  totals(): Map<string, CostTotals> {
    return new Map([...this.byQueue].map(([q, t]) => [q, { ...t }]));
  }

  private advance(): void {
    const now = this.now();
    if (this.inFlight > 0) this.shareClock += (now - this.last) / 1000 / this.inFlight;
    this.last = now;
  }
}

/** Credits of a totals record. */
export const creditsOf = (t: CostTotals): number => t.warehouseCredits + t.cortexCredits;
