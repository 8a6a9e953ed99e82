/**
 * The lifecycle part of the storage contract: tombstones, rollbacks and
 * undeletions are versions like any other, stored and read back exactly by
 * every reader, listed as a config's latest version, and serialized with
 * concurrent writes on every node.
 */
import { describe, expect, it } from 'vitest';
import {
  apply,
  CfgdError,
  jsonEqual,
  planDelete,
  planPatch,
  planRollback,
  planUndelete,
  planWrite,
  type ConfigKey,
  type JsonObject,
  type Planner,
  type WriteOutcome,
} from '../../src/domain/index.js';
import type { ConfigStore } from '../../src/store/store.js';
import type { StoreFactory } from './store-contract.js';

let counter = 0;
const freshKey = (): ConfigKey => ({ userId: 'lifecycle', configName: `l${++counter}-${Date.now()}` });
const who = { author: 'tester', now: new Date('2026-09-10T11:12:13.140Z') };

const put = (store: ConfigStore, key: ConfigKey, values: JsonObject): Promise<WriteOutcome> =>
  store.write(key, (current) => planWrite(key, current, { values, ...who }));

export function lifecycleContract(name: string, factory: StoreFactory): void {
  describe(`lifecycle contract: ${name}`, () => {
    it('stores tombstones, rollbacks and undeletions as versions that every reader returns exactly', async () => {
      const store = await factory.open();
      const key = freshKey();
      await put(store, key, { a: 1, b: 2 });
      await store.write(key, (current) => planPatch(key, current, { patch: { b: null, c: 3 }, ...who }, undefined));
      const first = await store.version(key, 1);
      await store.write(key, (current) => planRollback(key, current, first!, who, undefined));
      await store.write(key, (current) => planDelete(key, current, who));
      const tombstone = await store.latest(key);
      expect(tombstone).toMatchObject({ version: 4, hasValues: false, values: {} });
      expect(tombstone?.audit).toMatchObject({ operation: 'delete', schemaVersion: 0 });
      expect(tombstone?.audit.changes).toEqual([
        { action: 'removed', key: 'a', value: 1 },
        { action: 'removed', key: 'b', value: 2 },
      ]);
      // A deleted config is still listed, as its tombstone.
      expect(await store.listLatest(key.userId)).toContainEqual(tombstone);
      await store.write(key, (current) => planUndelete(key, current, who, undefined));
      await put(store, key, { a: 'again' });

      const all = await store.versionsAfter(key, 0, 100);
      expect(all.map((v) => [v.version, v.audit.operation, v.audit.rollbackTo])).toEqual([
        [1, 'put', undefined],
        [2, 'patch', undefined],
        [3, 'rollback', 1],
        [4, 'delete', undefined],
        [5, 'undelete', undefined],
        [6, 'put', undefined],
      ]);
      expect(all[4]?.values).toEqual({ a: 1, b: 2 });
      expect(await store.auditEntries(key, 1, 100)).toEqual(all.map((v) => v.audit));
      for (const version of all) expect(await store.version(key, version.version)).toEqual(version);
      let previous: JsonObject = {};
      for (const version of all) {
        expect(jsonEqual(apply(version.audit.changes, previous), version.values)).toBe(true);
        previous = version.values;
      }
      await store.close();
    });

    it('concurrent deletes, undeletes, rollbacks and patches on two stores serialize into one replayable history', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      await put(stores[0], key, { n: 0 });
      const first = (await stores[0].version(key, 1))!;
      const planners: Planner[] = [
        (current) => planDelete(key, current, who),
        (current) => planUndelete(key, current, who, undefined),
        (current) => planRollback(key, current, first, who, undefined),
        (current) => planPatch(key, current, { patch: { n: Math.random() }, ...who }, undefined),
      ];
      const writes = Array.from({ length: 32 }, (_, i) => stores[i % 2]!.write(key, planners[i % planners.length]!));
      const outcomes = await Promise.allSettled(writes);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') {
          expect(outcome.reason).toBeInstanceOf(CfgdError);
          expect(['CONFIG_DELETED', 'CONFIG_NOT_DELETED']).toContain((outcome.reason as CfgdError).reason);
        }
      }
      const history = await stores[1].versionsAfter(key, 0, 100);
      const created = outcomes.filter((o) => o.status === 'fulfilled' && o.value.kind === 'create').length;
      expect(history.map((v) => v.version)).toEqual(Array.from({ length: created + 1 }, (_, i) => i + 1));
      let previous: JsonObject = {};
      for (const version of history) {
        expect(jsonEqual(apply(version.audit.changes, previous), version.values), `version ${version.version}`).toBe(
          true,
        );
        previous = version.values;
      }
      await Promise.all(stores.map((s) => s.close()));
    });

    it('remembers a request id with what its request did, and answers a retry with it, also after later writes', async () => {
      const store = await factory.open();
      const key = freshKey();
      const id = (n: number) => ({
        requestId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
        fingerprint: `fp${n}`,
      });
      const putWith = (values: JsonObject, n: number) =>
        store.write(key, (current) => planWrite(key, current, { values, ...who }), id(n));
      expect((await putWith({ a: 1 }, 1)).kind).toBe('create');
      expect(await putWith({ a: 1 }, 1)).toEqual({
        kind: 'replay',
        record: { requestId: id(1).requestId, fingerprint: 'fp1', version: 1, changed: true },
      });
      // An unchanged write with an id is remembered too, as unchanged.
      expect((await putWith({ a: 1 }, 2)).kind).toBe('unchanged');
      await put(store, key, { a: 2 });
      await put(store, key, { a: 3 });
      expect(await putWith({ whatever: true }, 2)).toEqual({
        kind: 'replay',
        record: { requestId: id(2).requestId, fingerprint: 'fp2', version: 1, changed: false },
      });
      expect(await putWith({ a: 9 }, 1)).toMatchObject({ kind: 'replay', record: { version: 1, changed: true } });
      // Ids are per config.
      const other = freshKey();
      expect(
        (await store.write(other, (current) => planWrite(other, current, { values: { b: 1 }, ...who }), id(1))).kind,
      ).toBe('create');
      expect((await store.latest(key))?.version).toBe(3);
      // A plan that fails records nothing: the id stays free.
      await expect(
        store.write(key, (current) => planWrite(key, current, { values: {}, expectedVersion: 1, ...who }), id(3)),
      ).rejects.toThrow(CfgdError);
      expect((await putWith({ a: 4 }, 3)).kind).toBe('create');
      await store.close();
    });

    it('the same request id sent to two stores at once creates one version', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      await put(stores[0], key, { n: 0 });
      const request = { requestId: '11111111-2222-4333-8444-555555555555', fingerprint: 'same' };
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          stores[i % 2]!.write(
            key,
            (current) => planPatch(key, current, { patch: { n: 1 }, ...who }, undefined),
            request,
          ),
        ),
      );
      const created = outcomes.filter((o) => o.kind === 'create');
      expect(created).toHaveLength(1);
      for (const o of outcomes) {
        if (o.kind === 'replay') expect(o.record).toMatchObject({ version: 2, changed: true, fingerprint: 'same' });
        else expect(o.kind).toBe('create');
      }
      expect((await stores[1].latest(key))?.version).toBe(2);
      await Promise.all(stores.map((s) => s.close()));
    });
  });
}
