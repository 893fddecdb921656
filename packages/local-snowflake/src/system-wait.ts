import { setTimeout as sleep } from 'node:timers/promises';
import { type Execution, STATEMENT_TYPE_ID } from './executor';
import { singleTextResult } from './result-encoding';

/**
 * `CALL SYSTEM$WAIT(n [, 'SECONDS' | 'MILLISECONDS' | 'MINUTES' | 'HOURS'])` (or `SELECT` it): a
 * statement that really takes that long and that a cancel or a statement timeout really interrupts,
 * which is what client code (and the driver's own tests of async execution and cancellation) use it for.
 * It answers `waited n seconds` (the unit as given, lower-case), like Snowflake.
 */
const SYSTEM_WAIT =
  /^\s*(CALL|SELECT)\s+(SYSTEM\$WAIT\s*\(\s*(\d+(?:\.\d+)?)\s*(?:,\s*'(SECONDS|SECOND|MILLISECONDS|MILLISECOND|MINUTES|MINUTE|HOURS|HOUR)'\s*)?\))\s*;?\s*$/i;

const UNIT_MS: Record<string, number> = { SECOND: 1000, MILLISECOND: 1, MINUTE: 60_000, HOUR: 3_600_000 };

export interface SystemWait {
  readonly ms: number;
  readonly column: string;
  readonly answer: string;
}

/** The wait a statement asks for, if it is a lone `SYSTEM$WAIT` call. */
export function readSystemWait(sql: string): SystemWait | undefined {
  const m = SYSTEM_WAIT.exec(sql);
  if (!m) return undefined;
  const amount = Number(m[3]);
  const unit = (m[4] ?? 'SECONDS').toUpperCase();
  return {
    ms: amount * UNIT_MS[unit.replace(/S$/, '')],
    column: m[1].toUpperCase() === 'CALL' ? 'SYSTEM$WAIT' : m[2].replace(/\s+/g, ' ').toUpperCase(),
    answer: `waited ${m[3]} ${unit.toLowerCase()}`,
  };
}

/** Waits (abortably: a cancel or timeout rejects with an AbortError) and returns the one-row answer. */
export async function runSystemWait(wait: SystemWait, signal: AbortSignal): Promise<Execution> {
  await sleep(wait.ms, undefined, { signal });
  return { result: singleTextResult(wait.column, wait.answer), statementTypeId: STATEMENT_TYPE_ID.select };
}
