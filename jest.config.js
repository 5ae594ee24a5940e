/** @type {import('jest').Config} */
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }];
module.exports = {
  // database tests start servers, clone databases and race connections: on a
  // loaded 2-core machine a hook can take longer than jest's default 5 s
  testTimeout: 30000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform: { '^.+\\.[tj]s$': swc },
      transformIgnorePatterns: ['/node_modules/(?!(lezer-feel|min-dash|jose)/)'],
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'db',
      testEnvironment: 'node',
      transform: { '^.+\\.[tj]s$': swc },
      // jose (used by server/ and the API tests) is published as ES modules only
      transformIgnorePatterns: ['/node_modules/(?!(lezer-feel|min-dash|jose)/)'],
      testMatch: ['<rootDir>/test/db/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/globalSetup.ts',
      globalTeardown: '<rootDir>/test/helpers/globalTeardown.ts',
    },
  ],
};
