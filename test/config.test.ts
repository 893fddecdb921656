import { ConfigError, jobOptionsFrom, loadConfig, VARIABLES } from '../src/config';
import { DEFAULT_JOB_OPTIONS } from '../src/producers/producer';

describe('config', () => {
  it('applies documented defaults when the environment is empty', () => {
    const c = loadConfig({});
    expect(c.redis.url).toBe('redis://127.0.0.1:6379');
    expect(c.pool).toMatchObject({ min: 1, max: 8, maxLifetimeMs: 3_600_000 });
    expect(c.localWarehouse.loginLatencyMs).toBe(300);
    expect(c.queuePrefix).toBe('{fleet}');
    expect(Object.isFrozen(c) && Object.isFrozen(c.pool)).toBe(true);
  });

  it('gives jobs the same attempts, backoff and retention through the environment and the library', () => {
    const fromEnv = jobOptionsFrom(loadConfig({}).jobs);
    expect(fromEnv).toEqual(DEFAULT_JOB_OPTIONS);
    expect(fromEnv).toMatchObject({ attempts: 5, backoff: { delay: 1000 }, removeOnComplete: { age: 86_400, count: 50_000 } });
  });

  it('reports every bad variable at once, naming it and the value received', () => {
    let err: unknown;
    try {
      loadConfig({ POOL_MAX: 'eight', REDIS_URL: 'http://x', LOG_LEVEL: 'loud' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/POOL_MAX="eight"/);
    expect(problems).toMatch(/REDIS_URL="http:\/\/x".*redis: or rediss:/);
    expect(problems).toMatch(/LOG_LEVEL="loud"/);
  });

  it('checks values against each other', () => {
    expect(() => loadConfig({ POOL_MIN: '9', POOL_MAX: '2' })).toThrow(/POOL_MIN=9 is greater than POOL_MAX=2/);
  });

  it('rejects out-of-range numbers', () => {
    expect(() => loadConfig({ EMBED_BATCH_MAX_SIZE: '0' })).toThrow(/EMBED_BATCH_MAX_SIZE/);
    expect(() => loadConfig({ WAREHOUSE_QUERY_TIMEOUT_MS: '-5' })).toThrow(/WAREHOUSE_QUERY_TIMEOUT_MS/);
  });

  it('collects secret values so logs can be scrubbed', () => {
    const c = loadConfig({ REDIS_PASSWORD: 'hunter22', SNOWFLAKE_PASSWORD: 's3cret!' });
    expect(c.secrets).toEqual(expect.arrayContaining(['hunter22', 's3cret!']));
  });

  it('every variable is documented in the configuration table (docs/configuration.md)', () => {
    const doc = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', 'docs', 'configuration.md'), 'utf8') as string;
    const missing = Object.keys(VARIABLES).filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});

describe('config secrets', () => {
  it('does not treat a default value as a secret (it would scrub ordinary words from logs)', () => {
    expect(loadConfig({}).secrets).toEqual([]);
  });

  it('scrubs each API token on its own, not only the comma-joined list', () => {
    const c = loadConfig({ FLEET_API_TOKENS: 'first-token-0123456789,second-token-0123456789' });
    expect(c.secrets).toEqual(expect.arrayContaining(['first-token-0123456789', 'second-token-0123456789']));
  });
});

describe('config: Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  it('parses the seeds; rediss:// seeds turn on TLS; the cache keys get a hash tag unless CACHE_KEY_PREFIX is set', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-0.redis:7001,[::1]:7002 ', REDIS_PASSWORD: 'cluster-pass' });
    expect(c.redis.cluster).toEqual({
      tls: false,
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-0.redis', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(c.redis.password).toBe('cluster-pass');
    expect(c.cache.keyPrefix).toBe('{fleet}:cache');
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://a:6379,rediss://b:6379' }).redis.cluster).toEqual({
      tls: true,
      nodes: [
        { host: 'a', port: 6379 },
        { host: 'b', port: 6379 },
      ],
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a:1', CACHE_KEY_PREFIX: 'app{cache}' }).cache.keyPrefix).toBe('app{cache}');
    // Without a cluster nothing changes.
    expect(loadConfig({}).redis.cluster).toBeUndefined();
    expect(loadConfig({}).cache.keyPrefix).toBe('fleet:cache');
  });

  it('names every mistake: a bad seed, mixed TLS, REDIS_URL as well, prefixes without a hash tag', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1,b,c:99999' })).toMatch(/REDIS_CLUSTER_NODES=.*"b" is not host:port.*"c:99999" is not host:port/);
    expect(problems({ REDIS_CLUSTER_NODES: 'redis://a:1,rediss://b:2' })).toMatch(/mixes redis:\/\/ and rediss:\/\//);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://a:1' })).toMatch(/set only one of REDIS_URL and REDIS_CLUSTER_NODES/);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', FLEET_QUEUE_PREFIX: 'fleet' })).toMatch(/FLEET_QUEUE_PREFIX="fleet" has no hash tag/);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', FLEET_QUEUE_PREFIX: '{}x' })).toMatch(/FLEET_QUEUE_PREFIX="{}x" has no hash tag/);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', CACHE_KEY_PREFIX: 'fleet:cache' })).toMatch(/CACHE_KEY_PREFIX="fleet:cache" has no hash tag.*{fleet}:cache/);
    // Named together with the other variables' problems.
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', FLEET_QUEUE_PREFIX: 'fleet', POOL_MAX: 'eight' })).toMatch(
      /POOL_MAX="eight"[\s\S]*FLEET_QUEUE_PREFIX="fleet" has no hash tag/,
    );
  });
});
