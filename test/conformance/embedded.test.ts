import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { planWrite } from '../../src/domain/index.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { credentialContract } from './credential-contract.js';
import { lifecycleContract } from './lifecycle-contract.js';
import { retentionContract } from './retention-contract.js';
import { schemaContract } from './schema-contract.js';
import { describeStoreContract, type StoreFactory } from './store-contract.js';

// The same better-sqlite3 the store loads on this Node (see sqlite-store.ts).
const Database = createRequire(import.meta.url)(
  Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-13' : 'better-sqlite3',
) as typeof import('better-sqlite3');

const dir = mkdtempSync(join(tmpdir(), 'cfgd-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const factory: StoreFactory = {
  shared: false,
  open: async () => new EmbeddedStore({ path: dir, sync: 'full' }),
};

describeStoreContract('embedded', factory);
schemaContract('embedded', factory);
lifecycleContract('embedded', factory);
retentionContract('embedded', factory);
credentialContract('embedded', factory);

describe('embedded store upgrade', () => {
  it('opens a database written before schemas existed: its versions read as puts with values and no schema', async () => {
    const old = mkdtempSync(join(tmpdir(), 'cfgd-upgrade-'));
    try {
      // The tables as the first release created them, with one config at version 1.
      const raw = new Database(join(old, 'cfgd.db'));
      raw.exec(`
        CREATE TABLE config_heads (user_id TEXT NOT NULL, config_name TEXT NOT NULL, version INTEGER NOT NULL,
          PRIMARY KEY (user_id, config_name)) WITHOUT ROWID;
        CREATE TABLE config_versions (user_id TEXT NOT NULL, config_name TEXT NOT NULL, version INTEGER NOT NULL,
          values_json TEXT NOT NULL, changes_json TEXT NOT NULL, author TEXT NOT NULL, created_at INTEGER NOT NULL,
          PRIMARY KEY (user_id, config_name, version)) WITHOUT ROWID;
        INSERT INTO config_heads VALUES ('u', 'c', 1);
        INSERT INTO config_versions VALUES ('u', 'c', 1, '{"a":1}', '[{"action":"added","key":"a","value":1}]',
          'anonymous', 1700000000000);
      `);
      raw.close();
      const store = new EmbeddedStore({ path: old, sync: 'full' });
      const key = { userId: 'u', configName: 'c' };
      expect(await store.latest(key)).toEqual({
        key,
        version: 1,
        values: { a: 1 },
        hasValues: true,
        audit: {
          version: 1,
          createdAt: new Date(1700000000000),
          author: 'anonymous',
          changes: [{ action: 'added', key: 'a', value: 1 }],
          operation: 'put',
          schemaVersion: 0,
        },
      });
      const next = await store.write(key, (current) =>
        planWrite(key, current, { values: { a: 2 }, author: 'tester', now: new Date() }),
      );
      expect(next.kind === 'create' && next.next.version).toBe(2);
      await store.close();
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });
});
