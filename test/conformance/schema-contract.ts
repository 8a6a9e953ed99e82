/**
 * The schema part of the storage contract: schema versions stored with the
 * version that sets them, handed to every plan with the version it plans
 * against, paged in order, and never bypassed by a write racing a schema
 * change (on two nodes where the backend is shared). The checks here are
 * plain functions of a marker schema, so the contract does not depend on the
 * JSON Schema engine.
 */
import { describe, expect, it } from 'vitest';
import {
  CfgdError,
  planSetSchema,
  planWrite,
  type ConfigKey,
  type ConfigSchema,
  type JsonObject,
  type SchemaCheck,
  type WriteOutcome,
} from '../../src/domain/index.js';
import type { ConfigStore } from '../../src/store/store.js';
import type { StoreFactory } from './store-contract.js';

let counter = 0;
const freshKey = (): ConfigKey => ({ userId: 'schemas', configName: `s${++counter}-${Date.now()}` });
const now = new Date('2026-03-04T05:06:07.890Z');

/** A marker schema: `{"forbid": "k"}` refuses values holding the key `k`. */
const forbidding = (key: string): JsonObject => ({ forbid: key });
const checkOf = (schema: JsonObject | undefined): SchemaCheck | undefined => {
  if (schema === undefined) return undefined;
  const forbidden = schema.forbid as string;
  return (values) =>
    Object.hasOwn(values, forbidden) ? [{ path: `/${forbidden}`, description: 'is forbidden', keyword: 'forbid' }] : [];
};

function put(store: ConfigStore, key: ConfigKey, values: JsonObject): Promise<WriteOutcome> {
  return store.write(key, (current, schema) =>
    planWrite(key, current, { values, author: 'writer', now }, checkOf(schema?.schema)),
  );
}

function setSchema(
  store: ConfigStore,
  key: ConfigKey,
  schema: JsonObject,
  migrationValues?: JsonObject,
  seen?: (schema: ConfigSchema | undefined) => void,
): Promise<WriteOutcome> {
  const check = checkOf(schema)!;
  return store.write(key, (current, currentSchema) => {
    seen?.(currentSchema);
    return planSetSchema(key, current, currentSchema, { schema, check, migrationValues, author: 'owner', now });
  });
}

export function schemaContract(name: string, factory: StoreFactory): void {
  describe(`schema contract: ${name}`, () => {
    it('a schema set before the first values is a version without values; the first values are checked', async () => {
      const store = await factory.open();
      const key = freshKey();
      expect(await store.schema(key, 1)).toBeUndefined();
      const plan = await setSchema(store, key, forbidding('bad'));
      expect(plan.kind).toBe('create');
      const latest = await store.latest(key);
      expect(latest).toMatchObject({ version: 1, hasValues: false, values: {} });
      expect(latest?.audit).toMatchObject({ version: 1, operation: 'set-schema', schemaVersion: 1, author: 'owner' });
      const stored = await store.schema(key, 1);
      expect(stored).toEqual({
        schemaVersion: 1,
        version: 1,
        schema: forbidding('bad'),
        createdAt: now,
        author: 'owner',
      });
      expect(await store.schemas(key, 1, 10)).toEqual([stored]);

      const refused = await put(store, key, { bad: 1 }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(CfgdError);
      expect((refused as CfgdError).reason).toBe('SCHEMA_VIOLATION');
      expect((await store.latest(key))?.version).toBe(1);

      await put(store, key, { good: 1 });
      const first = await store.latest(key);
      expect(first).toMatchObject({ version: 2, hasValues: true, values: { good: 1 } });
      expect(first?.audit).toMatchObject({ operation: 'put', schemaVersion: 1 });
      expect(first?.audit.changes).toEqual([{ action: 'added', key: 'good', value: 1 }]);
      // The version without values reads back as it was stored, from every reader.
      expect(await store.version(key, 1)).toEqual(latest);
      expect((await store.versionsAfter(key, 0, 10)).map((v) => [v.version, v.hasValues])).toEqual([
        [1, false],
        [2, true],
      ]);
      expect((await store.auditEntries(key, 1, 10)).map((e) => [e.operation, e.schemaVersion])).toEqual([
        ['set-schema', 1],
        ['put', 1],
      ]);
      await store.close();
    });

    it('hands each plan the schema of the version it plans against; a migration commits with its schema', async () => {
      const store = await factory.open();
      const key = freshKey();
      await put(store, key, { a: 1, b: 2 });
      let seen: ConfigSchema | undefined | 'not called' = 'not called';
      await setSchema(store, key, forbidding('x'), undefined, (schema) => (seen = schema));
      expect(seen).toBeUndefined();
      await setSchema(store, key, forbidding('b'), { a: 2 }, (schema) => (seen = schema));
      expect(seen).toMatchObject({ schemaVersion: 1, schema: forbidding('x') });
      const latest = await store.latest(key);
      // Values and schema in one version: the migration's diff, the new schema version.
      expect(latest).toMatchObject({ version: 3, values: { a: 2 }, hasValues: true });
      expect(latest?.audit).toMatchObject({ operation: 'set-schema', schemaVersion: 2 });
      expect(latest?.audit.changes).toEqual([
        { action: 'updated', key: 'a', value: 2, oldValue: 1 },
        { action: 'removed', key: 'b', value: 2 },
      ]);
      expect(await store.schema(key, 2)).toMatchObject({ schemaVersion: 2, version: 3, schema: forbidding('b') });
      let planned: ConfigSchema | undefined;
      await store.write(key, (current, schema) => {
        planned = schema;
        return planWrite(key, current, { values: { a: 3 }, author: 'writer', now }, checkOf(schema?.schema));
      });
      expect(planned).toEqual(await store.schema(key, 2));
      expect((await store.latest(key))?.audit).toMatchObject({ operation: 'put', schemaVersion: 2 });
      await store.close();
    });

    it('a refused schema change (incompatible values) writes nothing', async () => {
      const store = await factory.open();
      const key = freshKey();
      await put(store, key, { bad: true });
      const refused = await setSchema(store, key, forbidding('bad')).catch((error: unknown) => error);
      expect((refused as CfgdError).reason).toBe('SCHEMA_INCOMPATIBLE');
      expect((await store.latest(key))?.version).toBe(1);
      expect(await store.schema(key, 1)).toBeUndefined();
      expect(await store.schemas(key, 1, 10)).toEqual([]);
      await store.close();
    });

    it('pages schema versions in ascending order, consecutive, from any start', async () => {
      const store = await factory.open();
      const key = freshKey();
      for (let i = 1; i <= 10; i++) {
        await setSchema(store, key, forbidding(`k${i}`));
        await put(store, key, { [`v${i}`]: i });
      }
      const all = await store.schemas(key, 1, 100);
      expect(all.map((s) => [s.schemaVersion, s.version, s.schema.forbid])).toEqual(
        Array.from({ length: 10 }, (_, i) => [i + 1, 2 * i + 1, `k${i + 1}`]),
      );
      expect(await store.schemas(key, 0, 100)).toEqual(all);
      for (const limit of [1, 3, 8, 9]) {
        const paged: number[] = [];
        for (let from = 1; ;) {
          const page = await store.schemas(key, from, limit);
          expect(page.length).toBeLessThanOrEqual(limit);
          paged.push(...page.map((s) => s.schemaVersion));
          if (page.length < limit) break;
          from = page.at(-1)!.schemaVersion + 1;
        }
        expect(paged, `pages of ${limit}`).toEqual(all.map((s) => s.schemaVersion));
      }
      expect(await store.schemas(key, 11, 5)).toEqual([]);
      expect(await store.schema(key, 11)).toBeUndefined();
      expect(await store.schema(key, 0)).toBeUndefined();
      for (const schema of all) expect(await store.schema(key, schema.schemaVersion)).toEqual(schema);
      await store.close();
    });

    it('no write commits against a schema that a concurrent schema change replaced', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      await setSchema(stores[0], key, forbidding('nothing'));
      const writes = Array.from({ length: 24 }, (_, i) => put(stores[i % 2]!, key, { bad: i }));
      // Halfway, through the other node: from now on `bad` is forbidden (the migration drops it).
      const change = new Promise((resolve) => setTimeout(resolve, 5)).then(() =>
        setSchema(stores[1], key, forbidding('bad'), { clean: true }),
      );
      const outcomes = await Promise.allSettled([...writes, change]);
      expect(outcomes.at(-1)?.status).toBe('fulfilled');
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') expect((outcome.reason as CfgdError).reason).toBe('SCHEMA_VIOLATION');
      }
      const history = await stores[0].versionsAfter(key, 0, 100);
      expect(history.map((v) => v.version)).toEqual(Array.from({ length: history.length }, (_, i) => i + 1));
      // Every version satisfies the schema its audit entry names.
      for (const version of history) {
        const schema = await stores[0].schema(key, version.audit.schemaVersion);
        expect(checkOf(schema?.schema)!(version.values), `version ${version.version}`).toEqual([]);
      }
      const refused = outcomes.filter((o) => o.status === 'rejected').length;
      expect(history.length).toBe(1 + 24 - refused + 1);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('lists a config without values among the latest versions of its user, marked so', async () => {
      const store = await factory.open();
      const userId = `schema-lister-${++counter}-${Date.now()}`;
      await setSchema(store, { userId, configName: 'a' }, forbidding('x'));
      await put(store, { userId, configName: 'b' }, { b: 1 });
      const listed = await store.listLatest(userId);
      expect(listed.map((v) => [v.key.configName, v.version, v.hasValues])).toEqual([
        ['a', 1, false],
        ['b', 1, true],
      ]);
      await store.close();
    });

    it('keeps schemas across a close and a reopen', async () => {
      const key = freshKey();
      const first = await factory.open();
      await setSchema(first, key, forbidding('x'), { y: 1 });
      await first.close();
      const second = await factory.open();
      expect(await second.schema(key, 1)).toMatchObject({ schemaVersion: 1, schema: forbidding('x'), version: 1 });
      expect((await second.latest(key))?.audit).toMatchObject({ operation: 'set-schema', schemaVersion: 1 });
      await second.close();
    });
  });
}
