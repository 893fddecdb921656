import type { LoginRefusedError } from './login-refused-error';
import type { ResultChunks } from './result-chunks';
import type { EncodedResult } from './result-encoding';
import { type RowsetSegment, writeRowsetSegments } from './rowset-segments';
import { reportedParameters, type SessionSettings } from './session-parameters';
import type { Session } from './sessions';
import { MASTER_TOKEN_VALIDITY_S, SESSION_TOKEN_VALIDITY_S } from './sessions';
import type { SnowflakeError } from './snowflake-error';

/**
 * Reply bodies in the JSON shapes snowflake-sdk 3.3 parses (lib/services/sf.js, lib/connection/
 * statement.js, lib/connection/result/result.js). Every reply has `success`, `code`, `message` and
 * `data`; the driver turns `success: false` into an error carrying `code`, `message`, `data` and
 * `data.sqlState`.
 */

/** The real server version string shape; the driver only logs it. */
const SERVER_VERSION = '9.0.0 (local DuckDB stand-in)';

export function okReply(data: unknown): string {
  return JSON.stringify({ data, code: null, message: null, success: true });
}

/** A failed request: HTTP 200 with `success: false` (the driver retries only transport errors and 5xx). */
export function errorReply(err: SnowflakeError, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    data: { internalError: false, errorCode: err.code, age: 0, sqlState: err.sqlState, line: -1, pos: -1, ...err.data, ...extra },
    code: err.code,
    message: err.message,
    success: false,
    headers: null,
  });
}

/**
 * Snowflake's answer to a refused login (wrong password, bad JWT, invalid token…): HTTP 200,
 * `success: false`, the error's code and message, `nextAction: RETRY_LOGIN` and the authentication
 * method, as in the replies drivers' own tests replay (e.g. gosnowflake's PAT and snowflake-sdk's OAuth
 * wiremock mappings).
 */
export function loginRefusedReply(err: LoginRefusedError, loginName: string): string {
  return JSON.stringify({
    data: { nextAction: 'RETRY_LOGIN', authnMethod: err.authnMethod, loginName: loginName.toUpperCase(), errorCode: err.code, signInOptions: {} },
    code: err.code,
    message: err.message,
    success: false,
    headers: null,
  });
}

export function loginReply(session: Session): string {
  return okReply({
    masterToken: session.masterToken,
    token: session.token,
    validityInSeconds: SESSION_TOKEN_VALIDITY_S,
    masterValidityInSeconds: MASTER_TOKEN_VALIDITY_S,
    displayUserName: session.user.toUpperCase(),
    serverVersion: SERVER_VERSION,
    firstLogin: false,
    remMeToken: null,
    remMeValidityInSeconds: 0,
    healthCheckInterval: 45,
    newClientForUpgrade: null,
    sessionId: session.id,
    parameters: reportedParameters(session.settings),
    sessionInfo: {
      databaseName: session.database,
      schemaName: session.schema,
      warehouseName: session.warehouse,
      roleName: session.role,
    },
    idToken: null,
    idTokenValidityInSeconds: 0,
    responseData: null,
    mfaToken: null,
    mfaTokenValidityInSeconds: 0,
  });
}

/** `/session/token-request` reply: the driver reads `sessionToken`/`validityInSecondsST` and the master token. */
export function renewReply(session: Session): string {
  return okReply({
    sessionToken: session.token,
    validityInSecondsST: SESSION_TOKEN_VALIDITY_S,
    masterToken: session.masterToken,
    validityInSecondsMT: Math.max(0, Math.floor((session.masterExpiresAt - Date.now()) / 1000)),
    sessionId: session.id,
  });
}

/** How a reply's rows travel: the inline segment, and the chunk files holding the rest, if any. */
export interface ReplyRowLayout {
  readonly inline: RowsetSegment;
  readonly chunks?: ResultChunks;
}

/**
 * A query result: `rowtype`, `rowset`, `total` and `returned` (without `returned` the driver never
 * completes), `queryResultFormat: 'json'`, the statement type id and the session's current database
 * objects, and the session's parameters (with the statement's own on top); for a multi-statement
 * request, the `resultIds` of its statements. A large result (see `layout`) carries only its first rows
 * in `rowset` and lists the rest in `chunks` with the `qrmk` the driver sends back as
 * `x-amz-server-side-encryption-customer-key` when it downloads them; `total` and `returned` count every
 * row.
 *
 * Returned as UTF-8 bytes, the form it is sent and kept for replay in. The rowset is written here rather
 * than by `JSON.stringify`: an embedding reply is megabytes of vector text, which the result encoder
 * already produced as ASCII bytes (see `ResultCell`); they are copied in once, where stringify would copy
 * them into one large string that then has to be encoded to UTF-8 again.
 */
export function encodeQueryReply(
  session: Session,
  queryId: string,
  result: EncodedResult,
  statementTypeId: number,
  numberOfBinds: number,
  layout: ReplyRowLayout = { inline: writeRowsetSegments(result.rowset)[0] },
  extra: { statementParameters?: SessionSettings; resultIds?: readonly string[] } = {},
): Buffer {
  const data = JSON.stringify({
    parameters: reportedParameters(session.settings, extra.statementParameters),
    rowtype: result.rowtype,
    total: result.rowset.length,
    returned: result.rowset.length,
    queryId,
    databaseProvider: null,
    finalDatabaseName: session.database,
    finalSchemaName: session.schema,
    finalWarehouseName: session.warehouse,
    finalRoleName: session.role,
    numberOfBinds,
    arrayBindSupported: true,
    statementTypeId,
    version: 1,
    sendResultTime: Date.now(),
    queryResultFormat: 'json',
    ...(layout.chunks ? { chunks: layout.chunks.descriptors, qrmk: layout.chunks.qrmk } : {}),
    ...(extra.resultIds ? { resultIds: extra.resultIds.join(',') } : {}),
  });
  // `data` is an object literal: drop its closing brace and append the rowset as its last member.
  return Buffer.concat([
    Buffer.from(`{"data":${data.slice(0, -1)},"rowset":[`, 'utf8'),
    ...layout.inline.parts,
    Buffer.from(']},"code":null,"message":null,"success":true}', 'utf8'),
  ]);
}

/** `/monitoring/queries/<id>` reply, read by `connection.getQueryStatus()`. */
export function queryStatusReply(queryId: string, status: string, error?: SnowflakeError): string {
  return okReply({
    queries: [{ id: queryId, status, errorCode: error?.code ?? null, errorMessage: error?.message ?? null }],
  });
}
