import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { briefError, isConnectionError } from './outage-log';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Values that must never appear in logs (passwords, tokens); replaced by `[redacted]`. */
  secrets?: readonly string[];
  /** Destination stream; default stdout. */
  destination?: pino.DestinationStream;
  name?: string;
  /**
   * Add `traceId` and `spanId` of the active OpenTelemetry span to every line written inside a trace
   * (a job, a request, a batch), so logs and traces join up. Default true.
   */
  traceIds?: boolean;
}

/** pino mixin: the active span's ids, or nothing outside a trace. */
function traceIdsMixin(): Record<string, string> {
  const sc = trace.getSpanContext(context.active());
  return sc && isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : {};
}

/**
 * pino's error serializer, except for an expected connection error (refused, reset, closed): its stack
 * only shows the socket callback, and an outage would repeat it on every line, so message and code suffice.
 * What is not an Error (an already brief `{ message, code }`) is written as it is.
 */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  return isConnectionError(err) ? briefError(err) : pino.stdSerializers.err(err);
}

/**
 * Structured JSON logs (pino). Known secret values are scrubbed from every line as a last line of
 * defence; the fleet also never passes credentials to a log call.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
  const hooks = secrets.length
    ? {
        streamWrite(line: string) {
          let out = line;
          for (const s of secrets) out = out.split(s).join('[redacted]');
          return out;
        },
      }
    : undefined;
  return pino(
    {
      name: opts.name ?? 'fleet',
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      serializers: { err: serializeError },
      redact: { paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
      // pino crashes on `hooks: undefined` (it replaces its defaults), so the key is only set when needed.
      ...(hooks ? { hooks } : {}),
      ...(opts.traceIds === false ? {} : { mixin: traceIdsMixin }),
    },
    opts.destination ?? pino.destination(1),
  );
}
