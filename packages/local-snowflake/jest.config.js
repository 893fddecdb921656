/** The package's tests: the real snowflake-sdk driver against the server, in this process or as the bin. */
module.exports = {
  displayName: 'local-snowflake',
  // jest's node environment with an ordinary global object: builtins are not several times slower (the file says why).
  testEnvironment: '<rootDir>/test/jest-environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  // Not `testTimeout`: jest 29 ignores that in a project, and the fleet's `npm test` runs this one as a project.
  setupFilesAfterEnv: ['<rootDir>/test/jest-setup.ts'],
  slowTestThreshold: 20,
};
