/**
 * `npm run test:fast`: the unit and integration tests of both projects (jest.config.js) without the slow
 * files below, two files at a time (each jest worker has its own redis-server, test/global-setup.ts; every
 * test uses its own key prefix, temporary directories and free ports). `npm test` still runs everything, in band.
 *
 * Left out, with what each file took on a 2-core machine (2026-12-07; the process tests two files at a time):
 * - the fault suite: faults-warehouse (37 s), faults-memory (34 s), faults-kill (19 s), faults-netcut (10 s),
 *   shutdown-signals (9 s), faults-redis (8 s), worker-kill (4 s: a replica SIGKILLed mid-batch, as faults-kill),
 *   redis-cluster (45-70 s: six redis-servers), and the Redis outage tests that stop and restart their own
 *   redis-server: producer-outage (13 s), http-outage (3 s);
 * - the benchmark smoke runs: bench-coalesce (6 s), cache-bench (1 s);
 * - production-tree (37 s: two `npm ci` installs; dev-only-imports checks the same rules in seconds);
 * - the browser tests, browser-board and browser-job-lookup (6-10 s each: they start Chromium), so the fast run needs no browser;
 * - the tests that run the fleet's own processes end to end, as operators run them: cli-* (the built CLI,
 *   `node bin/fleet.js <command>`: cli-hostile-input 22 s for 16 processes, cli-tenants 23 s, cli-deals 9 s,
 *   cli-index-rebuild 7 s, cli-outage 6 s, cli-config 4 s), *-replica (worker replicas, `node bin/fleet.js
 *   worker`: snowflake-keypair-replica 7 s, secrets-logs-replica 5 s, redis-tls-acl-replica 3 s) and fleet-up
 *   (4-7 s). Each such process loads every module of the CLI (the driver, BullMQ, fastify, OpenTelemetry)
 *   before it does anything: 1.5-2 s of CPU apiece, which on two cores shared by two workers is wall time.
 *   What they check through a process is checked in-process here where it can be (the hostile-input list
 *   over HTTP and the library, login options and a rotated token file, TLS connections, the logger's
 *   scrubbing, configuration reaching what it configures, batch statements through chunked results);
 *   dev-only-imports stays, as the fast stand-in for production-tree.
 * What stays (about 800 tests in 73 files) took 74-80 s of jest on two workers on a quiet machine (2026-12-07;
 * 100-150 s beside another job's tests), 131-163 s before the process tests left and test/jest-environment.ts
 * (builtins at full speed under jest) came in; the sum of the files' times went from 250-300 s to 145-155 s.
 */
const base = require('./jest.config');

const SLOW = [
  '/test/faults-[^/]*\\.test\\.ts$',
  '/test/(producer|http)-outage\\.test\\.ts$',
  '/test/shutdown-signals\\.test\\.ts$',
  '/test/worker-kill\\.test\\.ts$',
  '/test/bench-[^/]*\\.test\\.ts$',
  '/test/cache-bench\\.test\\.ts$',
  '/test/production-tree\\.test\\.ts$',
  '/test/browser-[^/]*\\.test\\.ts$',
  '/test/cli-[^/]*\\.test\\.ts$',
  '/test/fleet-up\\.test\\.ts$',
  '/test/[^/]*-replica\\.test\\.ts$',
  '/test/redis-cluster\\.test\\.ts$',
];

module.exports = {
  ...base,
  projects: base.projects.map((project) =>
    typeof project === 'object' && project.displayName === 'fleet' ? { ...project, testPathIgnorePatterns: ['/node_modules/', ...SLOW] } : project,
  ),
};
