import { Writable } from 'node:stream';
import { createLogger, type LoggerOptions } from '../../src/telemetry/logger';

/** One JSON log line as the fleet's logger writes it. */
type LogLine = Record<string, unknown> & { msg: string };

/**
 * The fleet's logger (`opts` as `createLogger` takes them, level `info` unless given) writing into memory,
 * and what it wrote: the raw text, the parsed lines and their messages. `stream` is the destination, for a
 * test that builds its own logger over it.
 */
export function captureLogs(opts: Omit<LoggerOptions, 'destination'> = {}) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level: 'info', ...opts, destination: stream });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  return { logger, stream, text, lines, messages: () => lines().map((l) => l.msg) };
}
