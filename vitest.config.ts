import { defineConfig } from 'vitest/config';

/** The RethinkDB tests: run on reqlite in `npm test`, on a real server in `npm run test:rethinkdb`. */
const RETHINKDB_TESTS = ['test/conformance/rethinkdb.test.ts', 'test/integration/rethinkdb-*.test.ts'];
/** Tests that only a real RethinkDB can answer (clusters, duplicate tables): `npm run test:rethinkdb` only. */
const REAL_RETHINKDB_ONLY = 'test/integration/**/*.real.test.ts';

const integration = {
  globalSetup: ['test/helpers/rethinkdb-setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    projects:
      process.env.CFGD_TEST_RETHINKDB === 'real'
        ? [
            {
              test: {
                name: 'rethinkdb',
                ...integration,
                include: [...RETHINKDB_TESTS, REAL_RETHINKDB_ONLY],
                testTimeout: 180_000,
              },
            },
          ]
        : [
            {
              test: {
                name: 'unit',
                include: ['test/unit/**/*.test.ts'],
              },
            },
            {
              test: {
                name: 'integration',
                ...integration,
                include: ['test/integration/**/*.test.ts', 'test/conformance/**/*.test.ts'],
                exclude: [REAL_RETHINKDB_ONLY],
              },
            },
          ],
  },
});
