/**
 * The retention part of the storage contract: pruning raises the first kept
 * version and removes versions from the oldest end only, never the latest,
 * never lowering it; every reader honours it at once; the schemas that
 * pruned versions set and the request ids they carried outlive them; writes
 * go on while a prune runs.
 */
import { describe, expect, it } from 'vitest';
import {
  planSetSchema,
  planWrite,
  type ConfigKey,
  type JsonObject,
  type WriteOutcome,
} from '../../src/domain/index.js';
import type { ConfigStore } from '../../src/store/store.js';
import { expectContiguousHistory, type StoreFactory } from './store-contract.js';

let counter = 0;
const freshKey = (): ConfigKey => ({ userId: 'retention', configName: `r${++counter}-${Date.now()}` });
const who = { author: 'tester', now: new Date('2026-10-11T12:13:14.150Z') };
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const put = (store: ConfigStore, key: ConfigKey, values: JsonObject, requestId?: string): Promise<WriteOutcome> =>
  store.write(
    key,
    (current) => planWrite(key, current, { values, ...who }),
    requestId === undefined ? undefined : { requestId, fingerprint: `fp-${requestId}` },
  );

export function retentionContract(name: string, factory: StoreFactory): void {
  describe(`retention contract: ${name}`, () => {
    it('prunes from the oldest end; readers start at the new floor; schemas and request ids outlive their versions', async () => {
      const store = await factory.open();
      const key = freshKey();
      await put(store, key, { n: 1 });
      await store.write(key, (current, schema) =>
        planSetSchema(key, current, schema, { schema: { type: 'object' }, check: () => [], ...who }),
      );
      const requestId = '99999999-8888-4777-8666-555555555555';
      await put(store, key, { n: 3 }, requestId);
      for (let n = 4; n <= 30; n++) await put(store, key, { n });
      expect(await store.retention(key)).toEqual({ firstKept: 1, maxVersions: undefined });

      expect(await store.prune(key, 21)).toBe(21);
      expect(await store.firstKeptVersion(key)).toBe(21);
      expect(await expectContiguousHistory(store, key)).toEqual(range(21, 30));
      expect((await store.latest(key))?.version).toBe(30);
      // What the pruned versions carried is still there.
      expect(await store.schema(key, 1)).toMatchObject({ schemaVersion: 1, version: 2, schema: { type: 'object' } });
      expect((await store.schemas(key, 1, 10)).map((s) => s.version)).toEqual([2]);
      expect(await put(store, key, { n: 3 }, requestId)).toEqual({
        kind: 'replay',
        record: { requestId, fingerprint: `fp-${requestId}`, version: 3, changed: true },
      });
      // Never lowered; never past the latest version.
      expect(await store.prune(key, 5)).toBe(21);
      expect(await store.prune(key, 1000)).toBe(30);
      expect(await expectContiguousHistory(store, key)).toEqual([30]);
      await put(store, key, { n: 31 });
      expect(await expectContiguousHistory(store, key)).toEqual([30, 31]);
      expect(await store.retention(key)).toEqual({ firstKept: 30, maxVersions: undefined });
      await store.close();
    });

    it("keeps a config's own limit on kept versions", async () => {
      const store = await factory.open();
      const key = freshKey();
      expect(await store.setMaxVersions(key, 5)).toBe(false);
      expect(await store.retention(key)).toBeUndefined();
      await put(store, key, { n: 1 });
      expect(await store.setMaxVersions(key, 5)).toBe(true);
      await put(store, key, { n: 2 });
      expect(await store.retention(key)).toEqual({ firstKept: 1, maxVersions: 5 });
      expect(await store.setMaxVersions(key, undefined)).toBe(true);
      expect(await store.retention(key)).toEqual({ firstKept: 1, maxVersions: undefined });
      await store.close();
    });

    it('writes on another store go on while a prune runs, and the history stays contiguous', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      for (let n = 1; n <= 120; n++) await put(stores[0], key, { n });
      const [first] = await Promise.all([
        stores[0].prune(key, 101),
        (async () => {
          for (let n = 121; n <= 140; n++) await put(stores[1], key, { n });
        })(),
      ]);
      expect(first).toBe(101);
      expect(await expectContiguousHistory(stores[1], key)).toEqual(range(101, 140));
      await Promise.all(stores.map((s) => s.close()));
    });
  });
}
