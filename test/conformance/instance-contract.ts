/**
 * The `InstanceStore` contract (src/store/instance-store.ts) as test bodies
 * that take a store factory; every backend runs them (see the *.test.ts
 * beside this). The stores of one factory share their tables, so every test
 * uses configs of its own, and expiry cuts off at times no other test uses.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ConfigKey, InstanceReport } from '../../src/domain/index.js';
import type { ConfigStore } from '../../src/store/store.js';
import type { StoreFactory } from './store-contract.js';

let counter = 0;
const freshKey = (): ConfigKey => ({
  userId: 'fleet',
  configName: `c${++counter}-${randomBytes(4).toString('hex')}`,
});

/** A report of its own; times with milliseconds, which a backend storing seconds would lose. */
function report(instanceId: string, overrides: Partial<InstanceReport> = {}): InstanceReport {
  return {
    instanceId,
    appliedVersion: 3,
    failedVersion: 0,
    error: '',
    reportedAt: new Date('2026-05-06T07:08:09.123Z'),
    reportedBy: 'token:agent',
    ...overrides,
  };
}

const LONG_AGO = new Date('2000-01-01T00:00:00.000Z');

async function withStore(factory: StoreFactory, body: (store: ConfigStore) => Promise<void>): Promise<void> {
  const store = await factory.open();
  try {
    await body(store);
  } finally {
    await store.close();
  }
}

export function instanceContract(name: string, factory: StoreFactory): void {
  describe(`instance contract: ${name}`, () => {
    it('stores a report and reads it back exactly', async () => {
      await withStore(factory, async (store) => {
        const key = freshKey();
        const stored = report('web-1', { failedVersion: 4, error: 'reload: exit status 1 — "ünïcode"' });
        await store.instances.putReport(key, stored);
        const read = await store.instances.reports(key, LONG_AGO, 100);
        expect(read).toEqual([stored]);
        expect(read[0]!.reportedAt).toBeInstanceOf(Date);
        expect(read[0]!.reportedAt.getTime()).toBe(stored.reportedAt.getTime());
      });
    });

    it('keeps one report per instance and config: a new report replaces the old one', async () => {
      await withStore(factory, async (store) => {
        const key = freshKey();
        const other = freshKey();
        await store.instances.putReport(key, report('web-1', { appliedVersion: 1 }));
        await store.instances.putReport(other, report('web-1', { appliedVersion: 7 }));
        const later = report('web-1', {
          appliedVersion: 2,
          failedVersion: 3,
          error: 'boom',
          reportedAt: new Date('2026-05-06T07:09:00.001Z'),
        });
        await store.instances.putReport(key, later);
        // Replaced with every field, including one that goes back to empty.
        const cleared = report('web-1', { appliedVersion: 3, reportedAt: new Date('2026-05-06T07:10:00.002Z') });
        expect(await store.instances.reports(key, LONG_AGO, 100)).toEqual([later]);
        await store.instances.putReport(key, cleared);
        expect(await store.instances.reports(key, LONG_AGO, 100)).toEqual([cleared]);
        // The same instance on another config is another row.
        expect(await store.instances.reports(other, LONG_AGO, 100)).toEqual([report('web-1', { appliedVersion: 7 })]);
      });
    });

    it('lists by instance id, only those received at or after `since`, at most `limit`', async () => {
      await withStore(factory, async (store) => {
        const key = freshKey();
        const at = (ms: number): Date => new Date(Date.parse('2026-05-06T07:00:00.000Z') + ms);
        for (const [id, ms] of [
          ['c', 30],
          ['a', 10],
          ['d', 5],
          ['b', 20],
        ] as const) {
          await store.instances.putReport(key, report(id, { reportedAt: at(ms) }));
        }
        const ids = (reports: InstanceReport[]): string[] => reports.map((each) => each.instanceId);
        expect(ids(await store.instances.reports(key, LONG_AGO, 100))).toEqual(['a', 'b', 'c', 'd']);
        expect(ids(await store.instances.reports(key, at(10), 100))).toEqual(['a', 'b', 'c']);
        expect(ids(await store.instances.reports(key, at(11), 100))).toEqual(['b', 'c']);
        expect(ids(await store.instances.reports(key, LONG_AGO, 2))).toEqual(['a', 'b']);
        expect(await store.instances.reports(freshKey(), LONG_AGO, 100)).toEqual([]);
      });
    });

    it('expires the reports received before the cut-off, on every config, and counts them', async () => {
      await withStore(factory, async (store) => {
        const first = freshKey();
        const second = freshKey();
        const old = new Date('2001-02-03T04:05:06.007Z');
        const cutoff = new Date('2001-02-03T04:05:06.008Z');
        await store.instances.putReport(first, report('old-1', { reportedAt: old }));
        await store.instances.putReport(second, report('old-2', { reportedAt: old }));
        await store.instances.putReport(first, report('new-1', { reportedAt: cutoff }));
        expect(await store.instances.expireReports(cutoff)).toBeGreaterThanOrEqual(2);
        expect(await store.instances.reports(first, LONG_AGO, 100)).toEqual([report('new-1', { reportedAt: cutoff })]);
        expect(await store.instances.reports(second, LONG_AGO, 100)).toEqual([]);
        // Nothing left before the cut-off.
        expect(await store.instances.expireReports(cutoff)).toBe(0);
      });
    });

    it('shares reports between the stores of one backend', async () => {
      const key = freshKey();
      await withStore(factory, async (writer) => {
        await writer.instances.putReport(key, report('shared-1'));
      });
      await withStore(factory, async (reader) => {
        expect(await reader.instances.reports(key, LONG_AGO, 100)).toEqual([report('shared-1')]);
      });
    });

    it('takes concurrent reports of many instances without losing one', async () => {
      await withStore(factory, async (store) => {
        const key = freshKey();
        const ids = Array.from({ length: 40 }, (_, index) => `i-${String(index).padStart(2, '0')}`);
        await Promise.all(ids.map((id) => store.instances.putReport(key, report(id))));
        const read = await store.instances.reports(key, LONG_AGO, 1000);
        expect(read.map((each) => each.instanceId)).toEqual(ids);
      });
    });
  });
}
