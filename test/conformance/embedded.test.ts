import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { planWrite, type ConfigVersion, type JsonObject, type WritePlan } from '../../src/domain/index.js';
import { prepareWrite } from '../../src/store/embedded/prepared-write.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { credentialContract } from './credential-contract.js';
import { instanceContract } from './instance-contract.js';
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
instanceContract('embedded', factory);

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

describe('embedded store group commit', () => {
  const key = (name: string) => ({ userId: 'group', configName: `${name}-${Date.now()}` });
  const put = (store: EmbeddedStore, k: { userId: string; configName: string }, values: JsonObject) =>
    store.write(k, (current) => planWrite(k, current, { values, author: 'tester', now: new Date() }));

  it('stores the writes that arrive together in one transaction, each planned after the ones before it', async () => {
    const store = new EmbeddedStore({ path: dir, sync: 'full' });
    try {
      const keys = [key('a'), key('b'), key('c')];
      const before = store.commitStats();
      // Issued in one turn of the event loop: one group.
      const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => put(store, keys[i % 3]!, { n: i })));
      const after = store.commitStats();
      expect(after.commits - before.commits).toBe(1);
      expect(after.writes - before.writes).toBe(30);
      // Ten writes per config, versions 1..10 in the order they were issued, none lost to a race.
      for (const [index, k] of keys.entries()) {
        const versions = outcomes
          .filter((_, i) => i % 3 === index)
          .map((outcome) => (outcome.kind === 'create' ? outcome.next.version : -1));
        expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect((await store.latest(k))?.values).toEqual({ n: 27 + index });
      }
    } finally {
      await store.close();
    }
  });

  it('rolls back a write that fails half-way alone: the rest of its group commits', async () => {
    const store = new EmbeddedStore({ path: dir, sync: 'full' });
    try {
      const broken = key('broken');
      const fine = key('fine');
      await put(store, broken, { a: 1 });
      // A version that sets schema version 1, twice: the second insert of the schema row fails after its
      // version row went in, so only a savepoint of its own can take that row back out.
      const setsSchemaOne = (current: ConfigVersion | undefined): WritePlan => {
        const next = planWrite(broken, current, {
          values: { a: (current?.version ?? 0) + 1 },
          author: 't',
          now: new Date(),
        });
        if (next.kind !== 'create') throw new Error('expected a new version');
        return {
          kind: 'create',
          next: { ...next.next, audit: { ...next.next.audit, schemaVersion: 1 } },
          schema: { schemaVersion: 1, version: next.next.version, schema: {}, author: 't', createdAt: new Date() },
        };
      };
      await store.write(broken, setsSchemaOne);
      const before = store.commitStats();
      const results = await Promise.allSettled([
        put(store, fine, { x: 1 }),
        store.write(broken, setsSchemaOne),
        put(store, fine, { x: 2 }),
      ]);
      expect(store.commitStats().commits - before.commits).toBe(1);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((await store.latest(broken))?.version).toBe(2);
      expect(await store.version(broken, 3)).toBeUndefined();
      expect((await store.auditEntries(broken, 1, 10)).map((e) => e.version)).toEqual([1, 2]);
      expect((await store.latest(fine))?.values).toEqual({ x: 2 });
    } finally {
      await store.close();
    }
  });

  it('stores a write planned elsewhere only while the head is still the version it was planned against', async () => {
    const store = new EmbeddedStore({ path: dir, sync: 'full' });
    try {
      const k = key('prepared');
      await put(store, k, { a: 1 });
      const current = await store.latest(k);
      const plan = planWrite(k, current, { values: { a: 2 }, author: 't', now: new Date() });
      await put(store, k, { a: 3 });
      // Planned against version 1, but the head is at 2 now.
      expect(await store.commitPrepared(prepareWrite(k, current, plan, undefined))).toEqual({ kind: 'conflict' });
      expect((await store.latest(k))?.values).toEqual({ a: 3 });
      const fresh = await store.latest(k);
      const again = planWrite(k, fresh, { values: { a: 4 }, author: 't', now: new Date() });
      expect(await store.commitPrepared(prepareWrite(k, fresh, again, undefined))).toEqual({ kind: 'applied' });
      expect((await store.latest(k))?.values).toEqual({ a: 4 });
      expect((await store.latest(k))?.version).toBe(3);
    } finally {
      await store.close();
    }
  });
});
