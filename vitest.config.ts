import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/** The RethinkDB tests: run on reqlite in `npm test`, on a real server in `npm run test:rethinkdb`. */
const RETHINKDB_TESTS = ['test/conformance/rethinkdb.test.ts', 'test/integration/rethinkdb-*.test.ts'];
/** Tests that only a real RethinkDB can answer (clusters, duplicate tables): `npm run test:rethinkdb` only. */
const REAL_RETHINKDB_ONLY = 'test/integration/**/*.real.test.ts';

/**
 * The web console's tests drive a real headless Chromium (Debian's `chromium`, or CHROMIUM_PATH):
 * they run wherever it is installed (`.ci/run` installs it), and say so where it is not.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const browser = existsSync(CHROMIUM)
  ? [
      {
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          globalSetup: ['test/browser/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          env: { CHROMIUM_PATH: CHROMIUM },
        },
      },
    ]
  : [];
if (browser.length === 0 && process.env.CFGD_TEST_RETHINKDB !== 'real') {
  console.warn(`no Chromium at ${CHROMIUM}: the web console's browser tests do not run (apt-get install chromium)`);
}

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
            ...browser,
          ],
  },
});
