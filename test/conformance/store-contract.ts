/**
 * The storage contract of design §1–§2 and §4–§5, as test bodies that take a
 * store factory. Every backend runs all of them (see the *.test.ts beside this).
 */
import { describe, expect, it } from 'vitest';
import {
  apply,
  CfgdError,
  jsonEqual,
  planWrite,
  type ConfigKey,
  type ConfigVersion,
  type JsonObject,
  type WritePlan,
} from '../../src/domain/index.js';
import type { ConfigStore } from '../../src/store/store.js';

export interface StoreFactory {
  /** Opens a store on the backend's shared location; several open stores see the same data. */
  open(): Promise<ConfigStore>;
  /** True when stores opened by `open` are separate nodes that wake each other's subscribers. */
  readonly shared: boolean;
}

let counter = 0;
const freshKey = (): ConfigKey => ({ userId: 'contract', configName: `c${++counter}-${Date.now()}` });
const now = new Date('2026-01-02T03:04:05.678Z');

function put(store: ConfigStore, key: ConfigKey, values: JsonObject, expectedVersion?: number): Promise<WritePlan> {
  return store.write(key, (current) => planWrite(key, current, { values, expectedVersion, author: 'tester', now }));
}

async function created(store: ConfigStore, key: ConfigKey, values: JsonObject): Promise<ConfigVersion> {
  const plan = await put(store, key, values);
  if (plan.kind !== 'create') throw new Error('expected a new version');
  return plan.next;
}

function waitForWake(): { wake: () => void; woken: Promise<void>; count: () => number } {
  let n = 0;
  let resolve!: () => void;
  const woken = new Promise<void>((r) => (resolve = r));
  return {
    wake: () => {
      n++;
      resolve();
    },
    woken,
    count: () => n,
  };
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms))]);

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    it('a missing config has no latest version and no versions', async () => {
      const store = await factory.open();
      const key = freshKey();
      expect(await store.latest(key)).toBeUndefined();
      expect(await store.version(key, 1)).toBeUndefined();
      expect(await store.versionsAfter(key, 0, 10)).toEqual([]);
      expect(await store.auditEntries(key, 1, 10)).toEqual([]);
      await store.close();
    });

    it('writes versions 1, 2, 3 with values and audit entries read back exactly', async () => {
      const store = await factory.open();
      const key = freshKey();
      const values: JsonObject[] = [
        { test: 1 },
        { hello: 'world', nested: { list: [1, 2.5, null, true, 'é'], empty: {} } },
        { $reql_type$: 'TIME', __proto__x: 1, 'dotted.key': [[]], '': 'empty key' },
      ];
      for (const v of values) await created(store, key, v);
      const latest = await store.latest(key);
      expect(latest?.version).toBe(3);
      expect(latest?.values).toEqual(values[2]);
      for (let version = 1; version <= 3; version++) {
        const stored = await store.version(key, version);
        expect(stored?.version).toBe(version);
        expect(stored?.values).toEqual(values[version - 1]);
        expect(stored?.audit.version).toBe(version);
        expect(stored?.audit.author).toBe('tester');
        expect(stored?.audit.createdAt.getTime()).toBe(now.getTime());
        expect(stored?.key).toEqual(key);
      }
      const audit = await store.auditEntries(key, 1, 10);
      expect(audit.map((e) => e.version)).toEqual([1, 2, 3]);
      expect(audit[0]?.changes).toEqual([{ action: 'added', key: 'test', value: 1 }]);
      expect(audit[1]?.changes[0]).toEqual({ action: 'removed', key: 'test', value: 1 });
      await store.close();
    });

    it('keeps a "__proto__" key as data', async () => {
      const store = await factory.open();
      const key = freshKey();
      const values = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonObject;
      await created(store, key, values);
      const stored = await store.latest(key);
      expect(Object.keys(stored!.values)).toEqual(['__proto__', 'a']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await store.close();
    });

    it('pages versions and audit entries in ascending order', async () => {
      const store = await factory.open();
      const key = freshKey();
      for (let i = 1; i <= 25; i++) await created(store, key, { i });
      expect((await store.versionsAfter(key, 0, 10)).map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect((await store.versionsAfter(key, 20, 10)).map((v) => v.version)).toEqual([21, 22, 23, 24, 25]);
      expect((await store.versionsAfter(key, 20, 10))[0]?.values).toEqual({ i: 21 });
      expect(await store.versionsAfter(key, 25, 10)).toEqual([]);
      expect((await store.auditEntries(key, 24, 10)).map((e) => e.version)).toEqual([24, 25]);
      expect((await store.auditEntries(key, 3, 2)).map((e) => e.version)).toEqual([3, 4]);
      expect((await store.auditEntries(key, 0, 1)).map((e) => e.version)).toEqual([1]);
      await store.close();
    });

    it('an unchanged plan writes nothing and returns the current version', async () => {
      const store = await factory.open();
      const key = freshKey();
      const first = await created(store, key, { a: 1, b: { c: 2 } });
      const again = await put(store, key, { b: { c: 2 }, a: 1 });
      expect(again).toEqual({ kind: 'unchanged', current: first });
      expect((await store.latest(key))?.version).toBe(1);
      expect(await store.auditEntries(key, 1, 10)).toHaveLength(1);
      await store.close();
    });

    it('an error thrown by the plan writes nothing and reaches the caller', async () => {
      const store = await factory.open();
      const key = freshKey();
      await created(store, key, { a: 1 });
      const error = await put(store, key, { a: 2 }, 0).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CfgdError);
      expect((error as CfgdError).kind).toBe('version-mismatch');
      await expect(store.write(key, () => { throw new Error('boom'); })).rejects.toThrow('boom');
      expect((await store.latest(key))?.values).toEqual({ a: 1 });
      expect(await store.auditEntries(key, 1, 10)).toHaveLength(1);
      await store.close();
    });

    it('compare-and-set: of concurrent writers expecting the same version exactly one wins', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      await created(stores[0]!, key, { round: 0 });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => put(stores[i % 2]!, key, { writer: i }, 1)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as CfgdError).kind).toBe('version-mismatch');
      }
      expect((await stores[0]!.latest(key))?.version).toBe(2);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('concurrent writes serialize: contiguous versions, each entry consistent with its predecessor', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      const writes = Array.from({ length: 40 }, (_, i) =>
        stores[i % 2]!.write(key, (current) =>
          planWrite(key, current, { values: { ...(current?.values ?? {}), [`w${i}`]: i, last: i }, author: 'tester', now }),
        ),
      );
      const plans = await Promise.all(writes);
      const versions = plans.map((p) => (p.kind === 'create' ? p.next.version : -1)).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const all = await stores[1]!.versionsAfter(key, 0, 100);
      expect(all.map((v) => v.version)).toEqual(versions);
      let previous: JsonObject = {};
      for (const version of all) {
        expect(jsonEqual(apply(version.audit.changes, previous), version.values)).toBe(true);
        previous = version.values;
      }
      // Every writer's key survived: no write was lost.
      expect(Object.keys(previous).filter((k) => k.startsWith('w'))).toHaveLength(40);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('keeps configs apart, also when their legacy ids would collide', async () => {
      const store = await factory.open();
      const a = { userId: 'a-b', configName: `c${++counter}` };
      const b = { userId: 'a', configName: `b-c${counter}` };
      await created(store, a, { who: 'a' });
      await created(store, b, { who: 'b' });
      await created(store, b, { who: 'b2' });
      expect((await store.latest(a))?.values).toEqual({ who: 'a' });
      expect((await store.latest(b))?.version).toBe(2);
      await store.close();
    });

    it('keeps what it stored across a close and a reopen', async () => {
      const key = freshKey();
      const first = await factory.open();
      await created(first, key, { durable: true });
      await created(first, key, { durable: 'yes' });
      await first.close();
      const second = await factory.open();
      expect((await second.latest(key))?.values).toEqual({ durable: 'yes' });
      expect((await second.auditEntries(key, 1, 10)).map((e) => e.version)).toEqual([1, 2]);
      await second.close();
    });

    it('wakes subscribers of a config after its commits, not of other configs', async () => {
      const store = await factory.open();
      const key = freshKey();
      const other = freshKey();
      const mine = waitForWake();
      const theirs = waitForWake();
      const unsubscribe = await store.subscribe(key, mine.wake);
      const unsubscribeOther = await store.subscribe(other, theirs.wake);
      expect(store.stats().subscriptions).toBe(2);
      await created(store, key, { a: 1 });
      await within(mine.woken, 5000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(theirs.count()).toBe(0);
      unsubscribe();
      unsubscribeOther();
      unsubscribe();
      expect(store.stats().subscriptions).toBe(0);
      const after = mine.count();
      await created(store, key, { a: 2 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(mine.count()).toBe(after);
      await store.close();
    });

    it('lists the latest version of every config of a user, by name, and no other user\'s', async () => {
      const store = await factory.open();
      const userId = `lister-${++counter}-${Date.now()}`;
      expect(await store.listLatest(userId)).toEqual([]);
      await created(store, { userId, configName: 'b' }, { b: 1 });
      await created(store, { userId, configName: 'a' }, { a: 1 });
      await created(store, { userId, configName: 'b' }, { b: 2 });
      await created(store, { userId: `${userId}-other`, configName: 'a' }, { other: true });
      const listed = await store.listLatest(userId);
      expect(listed.map((v) => [v.key.configName, v.version, v.values])).toEqual([
        ['a', 1, { a: 1 }],
        ['b', 2, { b: 2 }],
      ]);
      expect(listed[1]).toEqual(await store.latest({ userId, configName: 'b' }));
      await store.close();
    });

    it('wakes a user subscription with the name of each config that changed, not for other users', async () => {
      const store = await factory.open();
      const userId = `waker-${++counter}-${Date.now()}`;
      const names: (string | undefined)[] = [];
      let resolve!: () => void;
      const both = new Promise<void>((r) => (resolve = r));
      const unsubscribe = await store.subscribe({ userId }, (name) => {
        names.push(name);
        if (names.includes('x') && names.includes('y')) resolve();
      });
      await created(store, { userId: `${userId}-other`, configName: 'x' }, { other: 1 });
      await created(store, { userId, configName: 'x' }, { x: 1 });
      await created(store, { userId, configName: 'y' }, { y: 1 });
      await within(both, 5000);
      await new Promise((r) => setTimeout(r, 100));
      expect(new Set(names)).toEqual(new Set(['x', 'y']));
      unsubscribe();
      expect(store.stats().subscriptions).toBe(0);
      await store.close();
    });

    if (factory.shared) {
      it('wakes subscribers on another node after a commit there', async () => {
        const [a, b] = await Promise.all([factory.open(), factory.open()]);
        const key = freshKey();
        const seen = waitForWake();
        const unsubscribe = await b!.subscribe(key, seen.wake);
        await created(a!, key, { from: 'a' });
        await within(seen.woken, 5000);
        expect((await b!.latest(key))?.values).toEqual({ from: 'a' });
        unsubscribe();
        await Promise.all([a!.close(), b!.close()]);
      });
    }
  });
}
