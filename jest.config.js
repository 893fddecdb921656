/**
 * `npm test` runs two projects: the fleet's tests (test/: against a private redis-server, see
 * test/global-setup.ts, and the local warehouse) and the local-snowflake package's own tests.
 * `npm run test:fast` runs them without the slow files (jest.fast.config.js).
 */
module.exports = {
  projects: [
    {
      displayName: 'fleet',
      // jest's node environment with an ordinary global object: builtins are not ten times slower (the file says why).
      testEnvironment: '<rootDir>/test/jest-environment.ts',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      transform: {
        '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
      },
      // In-process tests run the package's sources, as they run the fleet's: no rebuild after an edit.
      moduleNameMapper: {
        '^local-snowflake$': '<rootDir>/packages/local-snowflake/src',
      },
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
      slowTestThreshold: 20,
    },
    '<rootDir>/packages/local-snowflake',
  ],
  // A run-wide option in jest 29 (a project's own is ignored).
  testTimeout: 60_000,
};
