/**
 * The layer rules of docs/architecture.md ("Parts"), checked by `npm run lint` (dependency-cruiser):
 * which folder of src/ may import which. A rule names what a folder must not reach; type-only imports
 * count too unless a rule says otherwise, since a type couples two parts as much as a value does.
 */
const src = (...dirs) => `^src/(${dirs.join('|')})/`;
const DOMAIN = ['producers', 'workers', 'pool', 'warehouse', 'cache', 'index-builder', 'flows', 'http'];
const ENTRY = ['app', 'cli', 'bench'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make start-up order and tests fragile.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'config-imports-no-part',
      severity: 'error',
      comment: 'src/config is the only reader of process.env and imports no other part but the contracts (pure data: job defaults).',
      from: { path: src('config') },
      to: { path: '^src/', pathNot: src('config', 'contracts') },
    },
    {
      name: 'contracts-import-only-contracts',
      severity: 'error',
      comment: 'Contracts (queue names, schemas, errors) are shared by every side and depend on none.',
      from: { path: src('contracts') },
      to: { path: '^src/', pathNot: src('contracts') },
    },
    {
      name: 'resilience-imports-nothing',
      severity: 'error',
      comment: 'The breaker and deadline helper are leaf utilities.',
      from: { path: src('resilience') },
      to: { path: '^src/', pathNot: src('resilience') },
    },
    {
      name: 'fairness-imports-only-contracts-and-lua',
      severity: 'error',
      comment: 'Tenant lanes are shared by producers and workers: Redis scripts over the contracts, nothing else.',
      from: { path: src('fairness') },
      to: { path: '^src/', pathNot: src('fairness', 'contracts', 'redis-lua') },
    },
    { name: 'redis-lua-imports-nothing', severity: 'error', from: { path: src('redis-lua') }, to: { path: '^src/', pathNot: src('redis-lua') } },
    {
      name: 'producers-not-worker-side',
      severity: 'error',
      comment: 'The client library must not pull in workers, the pool or the warehouse.',
      from: { path: src('producers') },
      to: { path: src('workers', 'pool', 'warehouse', 'cache', 'index-builder', 'http', ...ENTRY) },
    },
    {
      name: 'workers-do-not-read-config',
      severity: 'error',
      comment: 'Processors get their dependencies injected; entry points read config and build clients.',
      from: { path: src('workers') },
      to: { path: src('config', 'http', 'producers', ...ENTRY) },
    },
    {
      name: 'pool-knows-no-jobs',
      severity: 'error',
      from: { path: src('pool') },
      to: { path: src('workers', 'producers', 'flows', 'cache', 'index-builder', 'http', ...ENTRY) },
    },
    {
      name: 'warehouse-queries-stand-alone',
      severity: 'error',
      comment: 'One file per statement over the Warehouse interface: no pool, cache or queue.',
      from: { path: src('warehouse') },
      to: { path: src('pool', 'cache', 'workers', 'producers', 'index-builder', 'http', ...ENTRY) },
    },
    { name: 'warehouse-no-bullmq', severity: 'error', from: { path: src('warehouse') }, to: { path: '^node_modules/bullmq/' } },
    {
      name: 'cache-not-warehouse',
      severity: 'error',
      from: { path: src('cache') },
      to: { path: src('warehouse', 'pool', 'workers', 'producers', 'http', ...ENTRY) },
    },
    {
      name: 'index-builder-not-http-or-producers',
      severity: 'error',
      from: { path: src('index-builder') },
      to: { path: src('http', 'producers', 'workers', ...ENTRY) },
    },
    {
      name: 'flows-not-workers',
      severity: 'error',
      comment: 'Flow logic is pure; the processors in src/workers call it.',
      from: { path: src('flows') },
      to: { path: src('workers', 'pool', 'http', ...ENTRY) },
    },
    { name: 'telemetry-not-domain', severity: 'error', from: { path: src('telemetry') }, to: { path: src(...DOMAIN, ...ENTRY) } },
    {
      name: 'http-builds-no-clients',
      severity: 'error',
      comment: 'Routes get a producer and queues; the entry point builds clients.',
      from: { path: src('http') },
      to: { path: src('pool', 'warehouse', 'workers', 'index-builder', ...ENTRY) },
    },
    {
      name: 'entry-points-on-top',
      severity: 'error',
      comment: 'Only entry points (app, cli, bench) import entry points.',
      from: { path: '^src/', pathNot: src(...ENTRY) },
      to: { path: src(...ENTRY) },
    },
    {
      name: 'cli-is-the-top',
      severity: 'error',
      comment: 'Nothing imports the CLI, except the benchmarks their names (src/cli/bench-names.ts: the production image has no src/bench).',
      from: { path: '^src/', pathNot: src('cli') },
      to: { path: src('cli'), pathNot: '^src/cli/bench-names\\.ts$' },
    },
    { name: 'src-not-tests', severity: 'error', from: { path: '^src/' }, to: { path: '^test/' } },
    {
      name: 'package-stands-alone',
      severity: 'error',
      comment: 'packages/local-snowflake imports nothing of the fleet.',
      from: { path: '^packages/local-snowflake/' },
      to: { path: '^(src|test)/' },
    },
    {
      name: 'local-warehouse-loaded-in-one-place',
      severity: 'error',
      comment: 'local-snowflake is a dev dependency: the fleet loads it at run time only through src/app/local-snowflake.ts (types anywhere).',
      from: { path: '^src/', pathNot: '^src/app/local-snowflake\\.ts$' },
      to: { path: '(^|/)(node_modules/local-snowflake|packages/local-snowflake)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-dev-deps-in-production-code',
      severity: 'error',
      comment: 'The production image installs dependencies only; benchmarks load their dev-only datasets lazily.',
      from: { path: '^src/', pathNot: src('bench') },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    // Not followed into (dist of the workspace package is where 'local-snowflake' resolves) but still seen as targets.
    doNotFollow: { path: ['node_modules', '/dist/'] },
    exclude: { path: '^(dist|\\.tools|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
