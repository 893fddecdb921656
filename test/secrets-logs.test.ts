import { Writable } from 'node:stream';
import { createLogger } from '../src/telemetry/logger';

/**
 * Secrets never reach logs: the logger scrubs every configured secret. A real worker replica whose warehouse
 * login fails is grepped for them in test/secrets-logs-replica.test.ts (a fleet process: `npm test` only).
 */
const SECRET_PASSWORD = 'sw0rdfish-not-the-warehouse-password';

describe('security: configured secrets never appear in logs or job data', () => {
  it('the logger scrubs configured secret values from every line, wherever they appear', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger({ secrets: [SECRET_PASSWORD], destination });
    logger.error({ err: new Error(`login failed for password ${SECRET_PASSWORD}`), url: `redis://:${SECRET_PASSWORD}@host:6379` }, `saw ${SECRET_PASSWORD}`);
    logger.info({ password: 'hunter2-is-a-field' }, 'field redaction');
    const out = lines.join('');
    expect(out).not.toContain(SECRET_PASSWORD);
    expect(out.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(4);
    expect(out).not.toContain('hunter2-is-a-field');
  });
});
