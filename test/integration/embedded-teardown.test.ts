/**
 * The embedded store's SQLite binding must not abort the process when its
 * objects are finalized: better-sqlite3 12 does on Node 24 (its destructors
 * assert a current Node environment), so cfgd loads 13 there (see
 * sqlite-store.ts). Run on whichever Node runs the tests; CI runs both.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the embedded store on this Node', () => {
  it(`opens and closes many stores and exits cleanly (Node ${process.versions.node})`, () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/embedded-churn.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.stderr).not.toMatch(/Assertion failed/);
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    expect(child.stdout).toMatch(/^churned, 200000 objects$/m);
  }, 90_000);
});
