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
  type WriteOutcome,
} from '../../src/domain/index.js';
import { FIRST_VERSION, type ConfigStore } from '../../src/store/store.js';

export interface StoreFactory {
  /** Opens a store on the backend's shared location; several open stores see the same data. */
  open(): Promise<ConfigStore>;
  /** True when stores opened by `open` are separate nodes that wake each other's subscribers. */
  readonly shared: boolean;
}

let counter = 0;
const freshKey = (): ConfigKey => ({ userId: 'contract', configName: `c${++counter}-${Date.now()}` });
const now = new Date('2026-01-02T03:04:05.678Z');

function put(store: ConfigStore, key: ConfigKey, values: JsonObject, expectedVersion?: number): Promise<WriteOutcome> {
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
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)),
  ]);

const range = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Page sizes around the RethinkDB readers' look-ahead (8) and chunk doubling, and a few small ones. */
const PAGE_SIZES = [1, 2, 3, 7, 8, 9, 16, 17];

/**
 * Asserts the history contract of `ConfigStore` on one config: the versions
 * every reader returns are exactly those from the first kept version to the
 * latest, each once, whichever way they are read (point reads, one long read,
 * pages of any size, audit entries, from below the first kept version);
 * nothing outside that range is returned. Returns the kept versions' numbers.
 * Exported so that a unit test can show that it fails on stores that break
 * the contract.
 */
export async function expectContiguousHistory(store: ConfigStore, key: ConfigKey): Promise<number[]> {
  const first = await store.firstKeptVersion(key);
  expect(Number.isSafeInteger(first), `first kept version ${first}`).toBe(true);
  expect(first).toBeGreaterThanOrEqual(FIRST_VERSION);
  const latest = await store.latest(key);
  const kept = latest === undefined ? [] : range(first, latest.version);
  if (latest !== undefined) expect(latest.version, 'the latest version is kept').toBeGreaterThanOrEqual(first);
  const wide = kept.length + 10;

  // One read from just below the first kept version: every kept version, in order, once.
  const all = await store.versionsAfter(key, first - 1, wide);
  expect(all.map((v) => v.version)).toEqual(kept);
  if (latest !== undefined) expect(all.at(-1)).toEqual(latest);
  // Asked to start further below, the readers start at the first kept version.
  for (const below of new Set([first - 2, first - 5, 0, -1])) {
    expect(
      (await store.versionsAfter(key, below, wide)).map((v) => v.version),
      `versionsAfter(${below})`,
    ).toEqual(kept);
  }
  for (const below of new Set([first - 1, first - 4, 0, -1])) {
    expect(
      (await store.auditEntries(key, below, wide)).map((e) => e.version),
      `auditEntries(${below})`,
    ).toEqual(kept);
  }
  // The audit entries are those of the versions.
  expect(await store.auditEntries(key, first, wide)).toEqual(all.map((v) => v.audit));
  // Point reads: every kept version, and nothing just outside the range.
  for (const version of all) expect(await store.version(key, version.version)).toEqual(version);
  const outsideAbove = latest === undefined ? [first, first + 1] : [latest.version + 1];
  for (const outside of [first - 1, 0, -1, ...outsideAbove]) {
    expect(await store.version(key, outside), `version(${outside})`).toBeUndefined();
  }
  expect(await store.versionsAfter(key, latest?.version ?? first, wide)).toEqual([]);
  expect(await store.auditEntries(key, (latest?.version ?? first - 1) + 1, wide)).toEqual([]);

  // Paged, as watches and History read: a short page only at the end, no gap, no repeat.
  for (const limit of PAGE_SIZES) {
    const versions: number[] = [];
    for (let after = first - 1; ;) {
      const page = await store.versionsAfter(key, after, limit);
      expect(page.length, `a page of versionsAfter(${after}, ${limit})`).toBeLessThanOrEqual(limit);
      versions.push(...page.map((v) => v.version));
      if (page.length < limit) break;
      after = page.at(-1)!.version;
    }
    expect(versions, `versions in pages of ${limit}`).toEqual(kept);
    const entries: number[] = [];
    for (let from = first; ;) {
      const page = await store.auditEntries(key, from, limit);
      expect(page.length, `a page of auditEntries(${from}, ${limit})`).toBeLessThanOrEqual(limit);
      entries.push(...page.map((e) => e.version));
      if (page.length < limit) break;
      from = page.at(-1)!.version + 1;
    }
    expect(entries, `audit entries in pages of ${limit}`).toEqual(kept);
  }
  return kept;
}

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

    it('answers a ping while open and refuses one once closed', async () => {
      const store = await factory.open();
      await expect(store.ping()).resolves.toBeUndefined();
      await created(store, freshKey(), { a: 1 });
      await expect(store.ping()).resolves.toBeUndefined();
      await store.close();
      await expect(store.ping()).rejects.toThrow();
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

    it('a config never written keeps nothing: its history starts at the first version and is empty', async () => {
      const store = await factory.open();
      const key = freshKey();
      expect(await store.firstKeptVersion(key)).toBe(FIRST_VERSION);
      expect(await expectContiguousHistory(store, key)).toEqual([]);
      await store.close();
    });

    it('versions are contiguous from the first kept version to the latest, however they are read', async () => {
      const store = await factory.open();
      const key = freshKey();
      let firstKept = await store.firstKeptVersion(key);
      let n = 0;
      // Checked at lengths either side of the RethinkDB readers' look-ahead (8) and first chunk doubling (16).
      for (const length of [1, 2, 8, 9, 17, 20]) {
        while (((await store.latest(key))?.version ?? 0) < length) await created(store, key, { length, n: ++n });
        const kept = await expectContiguousHistory(store, key);
        expect(kept.at(-1)).toBe(length);
        // Every version is kept until retention exists; and the first kept version never goes down.
        const first = await store.firstKeptVersion(key);
        expect(first).toBe(FIRST_VERSION);
        expect(first).toBeGreaterThanOrEqual(firstKept);
        firstKept = first;
      }
      await store.close();
    });

    it('readers asked to start below the first kept version start at it; nothing is read below or above the history', async () => {
      const store = await factory.open();
      const key = freshKey();
      for (let i = 1; i <= 3; i++) await created(store, key, { i });
      const first = await store.firstKeptVersion(key);
      for (const after of [first - 1, first - 2, -10]) {
        expect(
          (await store.versionsAfter(key, after, 2)).map((v) => v.version),
          `versionsAfter(${after}, 2)`,
        ).toEqual([first, first + 1]);
      }
      for (const from of [first, first - 1, -10]) {
        expect(
          (await store.auditEntries(key, from, 2)).map((e) => e.version),
          `auditEntries(${from}, 2)`,
        ).toEqual([first, first + 1]);
      }
      expect(await store.version(key, first - 1)).toBeUndefined();
      expect((await store.version(key, first))?.values).toEqual({ i: first });
      expect(await store.version(key, 4)).toBeUndefined();
      expect(await store.versionsAfter(key, 3, 10)).toEqual([]);
      expect(await store.auditEntries(key, 4, 10)).toEqual([]);
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
      await expect(
        store.write(key, () => {
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await store.latest(key))?.values).toEqual({ a: 1 });
      expect(await store.auditEntries(key, 1, 10)).toHaveLength(1);
      await store.close();
    });

    it('compare-and-set: of concurrent writers expecting the same version exactly one wins', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      await created(stores[0], key, { round: 0 });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => put(stores[i % 2]!, key, { writer: i }, 1)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as CfgdError).kind).toBe('version-mismatch');
      }
      expect((await stores[0].latest(key))?.version).toBe(2);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('concurrent writes serialize: contiguous versions, each entry consistent with its predecessor', async () => {
      const stores = await Promise.all([factory.open(), factory.open()]);
      const key = freshKey();
      const writes = Array.from({ length: 40 }, (_, i) =>
        stores[i % 2]!.write(key, (current) =>
          planWrite(key, current, {
            values: { ...(current?.values ?? {}), [`w${i}`]: i, last: i },
            author: 'tester',
            now,
          }),
        ),
      );
      const plans = await Promise.all(writes);
      const versions = plans.map((p) => (p.kind === 'create' ? p.next.version : -1)).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const all = await stores[1].versionsAfter(key, 0, 100);
      expect(all.map((v) => v.version)).toEqual(versions);
      let previous: JsonObject = {};
      for (const version of all) {
        expect(jsonEqual(apply(version.audit.changes, previous), version.values)).toBe(true);
        previous = version.values;
      }
      // Every writer's key survived: no write was lost.
      expect(Object.keys(previous).filter((k) => k.startsWith('w'))).toHaveLength(40);
      // Read back from the other node, the history is contiguous whichever reader reads it.
      expect(await expectContiguousHistory(stores[0], key)).toEqual(versions);
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

    it("lists the latest version of every config of a user, by name, and no other user's", async () => {
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
        const unsubscribe = await b.subscribe(key, seen.wake);
        await created(a, key, { from: 'a' });
        await within(seen.woken, 5000);
        expect((await b.latest(key))?.values).toEqual({ from: 'a' });
        unsubscribe();
        await Promise.all([a.close(), b.close()]);
      });
    }
  });
}
