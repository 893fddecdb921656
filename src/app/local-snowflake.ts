/**
 * The one place the fleet loads `local-snowflake` (the Snowflake-protocol server on DuckDB). It is a
 * development dependency: `npm ci` installs it, the production image (`npm ci --omit=dev`) does not, and
 * no role needs it. `fleet up` without a Snowflake account, `fleet warehouse` and the benchmarks load it
 * here, when they start one; everything else refers to it with `import type` only.
 */
type LocalSnowflake = typeof import('local-snowflake');

/** Printed (after `fleet: `) when the package is not installed. */
export const LOCAL_SNOWFLAKE_MISSING =
  'the local warehouse is a development dependency (local-snowflake): run npm ci without --omit=dev, or set SNOWFLAKE_ACCOUNT / SNOWFLAKE_ACCESS_URL';

/**
 * The `local-snowflake` module, or an error with {@link LOCAL_SNOWFLAKE_MISSING} when it is not installed.
 *
 * @example
 *   const local = await loadLocalSnowflake().startLocalWarehouse({ port: 0 });
 */
export function loadLocalSnowflake(): LocalSnowflake {
  try {
    return require('local-snowflake') as LocalSnowflake;
  } catch (err) {
    // Only the package itself being absent; a missing dependency inside it is a different problem.
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'MODULE_NOT_FOUND' && /Cannot find module 'local-snowflake'/.test(e.message)) {
      throw new Error(LOCAL_SNOWFLAKE_MISSING, { cause: err });
    }
    // Installed (the workspace is linked) but never compiled, e.g. after `npm ci --ignore-scripts`.
    if (e?.code === 'MODULE_NOT_FOUND' && /[\\/]local-snowflake[\\/]dist[\\/]/.test(e.message)) {
      throw new Error('the local warehouse (local-snowflake) is installed but not built: run npm run build', { cause: err });
    }
    throw err;
  }
}
