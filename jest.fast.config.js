/**
 * `npm run test:fast`: the unit and integration tests of both projects (jest.config.js) without the slow
 * files below, two files at a time (each jest worker has its own redis-server, test/global-setup.ts; every
 * test uses its own key prefix, temporary directories and free ports). `npm test` still runs everything, in band.
 *
 * Left out, with what each file took in a full `npm test` on a 2-core machine (2026-12-07):
 * - the fault suite: faults-warehouse (37 s), faults-memory (34 s), faults-kill (19 s), faults-netcut (10 s),
 *   shutdown-signals (9 s), faults-redis (8 s), worker-kill (4 s: a replica SIGKILLed mid-batch, as faults-kill),
 *   and the Redis outage tests that stop and restart their own redis-server: producer-outage (13 s),
 *   cli-outage (7 s), http-outage (3 s);
 * - the benchmark smoke runs: bench-coalesce (6 s), cache-bench (1 s);
 * - production-tree (37 s: two `npm ci` installs; dev-only-imports checks the same rules in seconds);
 * - the browser tests, browser-board and browser-job-lookup (6-10 s each: they start Chromium), so the fast run needs no browser.
 * What stays (about 770 tests) took 137-163 s on two workers on 2026-12-07 (it was 40-50 s before that day's
 * outage, lookup, telemetry and filter tests); the sum of the files' times is 250-300 s.
 */
const base = require('./jest.config');

const SLOW = [
  '/test/faults-[^/]*\\.test\\.ts$',
  '/test/(producer|http|cli)-outage\\.test\\.ts$',
  '/test/shutdown-signals\\.test\\.ts$',
  '/test/worker-kill\\.test\\.ts$',
  '/test/bench-[^/]*\\.test\\.ts$',
  '/test/cache-bench\\.test\\.ts$',
  '/test/production-tree\\.test\\.ts$',
  '/test/browser-[^/]*\\.test\\.ts$',
  '/test/redis-cluster\\.test\\.ts$',
];

module.exports = {
  ...base,
  projects: base.projects.map((project) =>
    typeof project === 'object' && project.displayName === 'fleet' ? { ...project, testPathIgnorePatterns: ['/node_modules/', ...SLOW] } : project,
  ),
};
