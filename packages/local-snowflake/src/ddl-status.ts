import type { DuckDBConnection } from '@duckdb/node-api';
import { tokenize } from './dialect/tokens';
import type { Execution } from './executor';
import { statusResult } from './result-encoding';

/**
 * The one-cell `status` Snowflake returns for DDL, which names the object: `Table T1 successfully
 * created.`, `T1 successfully dropped.`; `CREATE … IF NOT EXISTS` of an object that exists gives
 * `T1 already exists, statement succeeded.` and `DROP … IF EXISTS` of a missing one
 * `Drop statement executed successfully (T1 already dropped).`. Other statements without rows say
 * `Statement executed successfully.`.
 */
const GENERIC_STATUS = 'Statement executed successfully.';

/** How Snowflake names each kind of object in a CREATE reply. */
const CREATED_KIND: Record<string, string> = {
  TABLE: 'Table',
  VIEW: 'View',
  SCHEMA: 'Schema',
  DATABASE: 'Database',
  SEQUENCE: 'Sequence',
  FUNCTION: 'Function',
  PROCEDURE: 'Function',
  STAGE: 'Stage area',
  WAREHOUSE: 'Warehouse',
  ROLE: 'Role',
  FILE: 'File format',
  STREAM: 'Stream',
  TASK: 'Task',
  MACRO: 'Function',
  TYPE: 'Type',
  INDEX: 'Index',
};

// Words that may sit between CREATE [OR REPLACE] and the object kind.
const MODIFIERS = new Set([
  'TEMPORARY',
  'TEMP',
  'TRANSIENT',
  'LOCAL',
  'GLOBAL',
  'VOLATILE',
  'SECURE',
  'MATERIALIZED',
  'RECURSIVE',
  'HYBRID',
  'DYNAMIC',
  'EXTERNAL',
  'ICEBERG',
  'UNIQUE',
]);

/** A DDL statement's verb, object kind and name, as far as the status message needs them. */
export interface DdlTarget {
  readonly verb: 'CREATE' | 'DROP';
  /** Upper-case kind keyword, e.g. `TABLE`. */
  readonly kind: string;
  /** The object's name as Snowflake prints it: the last part of a dotted name, unquoted names upper-cased. */
  readonly name: string;
  /** `IF NOT EXISTS` (CREATE) or `IF EXISTS` (DROP) was given. */
  readonly conditional: boolean;
  /** The dotted name's parts as DuckDB reads them (quoted parts as written, others lower-cased), for existence checks. */
  readonly parts: readonly string[];
}

type Tok = { text: string; quoted: boolean };

/** Leading identifiers and dots of a statement (comments skipped); stops at anything else. */
function leadingTokens(sql: string, max = 24): Tok[] {
  const out: Tok[] = [];
  for (const t of tokenize(sql)) {
    if (out.length >= max) break;
    if (t.kind === 'space' || t.kind === 'comment') continue;
    if (t.kind === 'word') out.push({ text: t.text, quoted: false });
    else if (t.kind === 'quoted')
      out.push({ text: t.text.slice(1, t.text.endsWith('"') && t.text.length > 1 ? -1 : undefined).replaceAll('""', '"'), quoted: true });
    else if (t.kind === 'punct' && t.text === '.') out.push({ text: '.', quoted: false });
    else break;
  }
  return out;
}

/** Reads the target of `CREATE …` / `DROP …`; undefined for anything else. */
export function ddlTarget(sql: string): DdlTarget | undefined {
  const toks = leadingTokens(sql);
  const word = (k: number) => (toks[k] && !toks[k].quoted ? toks[k].text.toUpperCase() : undefined);
  let k = 0;
  const verb = word(k++);
  if (verb !== 'CREATE' && verb !== 'DROP') return undefined;
  if (verb === 'CREATE' && word(k) === 'OR' && word(k + 1) === 'REPLACE') k += 2;
  while (word(k) !== undefined && MODIFIERS.has(word(k)!)) k++;
  let kind = word(k++);
  if (kind === undefined || !(kind in CREATED_KIND)) return undefined;
  if (kind === 'FILE' && word(k) === 'FORMAT') k++;
  let conditional = false;
  if (word(k) === 'IF' && word(k + 1) === 'NOT' && word(k + 2) === 'EXISTS') {
    conditional = true;
    k += 3;
  } else if (word(k) === 'IF' && word(k + 1) === 'EXISTS') {
    conditional = true;
    k += 2;
  }
  const parts: Tok[] = [];
  while (toks[k] && toks[k].text !== '.') {
    parts.push(toks[k++]);
    if (toks[k]?.text !== '.') break;
    k++;
  }
  if (parts.length === 0) return undefined;
  const last = parts[parts.length - 1];
  if (kind === 'MACRO') kind = 'FUNCTION';
  return {
    verb,
    kind,
    name: last.quoted ? last.text : last.text.toUpperCase(),
    conditional,
    parts: parts.map((p) => (p.quoted ? p.text : p.text.toLowerCase())),
  };
}

/**
 * The status of a DDL statement that succeeded. `existedBefore` is whether the object existed when the
 * statement started, where that was checked (only a conditional CREATE or DROP changes the message).
 */
function ddlStatus(target: DdlTarget | undefined, existedBefore?: boolean): string {
  if (!target) return GENERIC_STATUS;
  if (target.verb === 'CREATE') {
    if (target.conditional && existedBefore === true) return `${target.name} already exists, statement succeeded.`;
    return `${CREATED_KIND[target.kind]} ${target.name} successfully created.`;
  }
  if (target.conditional && existedBefore === false) return `Drop statement executed successfully (${target.name} already dropped).`;
  return `${target.name} successfully dropped.`;
}

/**
 * Whether the object a conditional CREATE/DROP names exists (tables, views, schemas and databases; by
 * name, case-insensitively, in any schema); undefined for other kinds, whose message then assumes the
 * statement acted.
 */
export async function objectExists(conn: DuckDBConnection, target: DdlTarget): Promise<boolean | undefined> {
  const name = target.parts[target.parts.length - 1];
  const sql: Partial<Record<string, string>> = {
    TABLE: 'SELECT 1 FROM duckdb_tables() WHERE lower(table_name) = lower($1) UNION ALL SELECT 1 FROM duckdb_views() WHERE lower(view_name) = lower($1)',
    VIEW: 'SELECT 1 FROM duckdb_views() WHERE lower(view_name) = lower($1) UNION ALL SELECT 1 FROM duckdb_tables() WHERE lower(table_name) = lower($1)',
    SCHEMA: 'SELECT 1 FROM duckdb_schemas() WHERE lower(schema_name) = lower($1)',
    DATABASE: 'SELECT 1 FROM duckdb_databases() WHERE lower(database_name) = lower($1)',
  };
  const query = sql[target.kind];
  if (!query) return undefined;
  const reader = await conn.runAndReadAll(query, [name]);
  return reader.currentRowCount > 0;
}

/** An execution with its generic DDL status replaced by Snowflake's message naming the object. */
export function withDdlStatus(execution: Execution, target: DdlTarget | undefined, existedBefore: boolean | undefined): Execution {
  const [row] = execution.result.rowset;
  if (!target || execution.result.rowtype[0]?.name !== 'status' || row?.[0] !== GENERIC_STATUS) return execution;
  return { ...execution, result: statusResult(ddlStatus(target, existedBefore)) };
}
