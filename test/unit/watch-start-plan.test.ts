import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planStart, type StartPlan, type WatchStart } from '../../src/app/watch/start-plan.js';
import type { VersionEvent } from '../../src/app/watch/watch-event.js';
import { CfgdError, type ConfigVersion } from '../../src/domain/index.js';

const USER = 'u';

function event(configName: string, version: number): VersionEvent {
  const config: ConfigVersion = {
    key: { userId: USER, configName },
    version,
    values: {},
    hasValues: true,
    audit: { version, createdAt: new Date(0), author: 't', changes: [], operation: 'put', schemaVersion: 0 },
  };
  return { kind: 'version', version: config };
}

/** The latest event of each config, as a channel holds them. */
function current(...entries: [string, number][]): Map<string, VersionEvent> {
  return new Map(entries.map(([name, version]) => [name, event(name, version)]));
}

const configWatch = (after: number | undefined): WatchStart => ({ scope: 'config', after });
const userWatch = (known: Record<string, number> = {}): WatchStart => ({
  scope: 'user',
  known: new Map(Object.entries(known)),
});
const versionsOf = (plan: StartPlan): string[] =>
  plan.snapshot.map((e) => `${e.version.key.configName}@${e.version.version}`);
const rangesOf = (plan: StartPlan): string[] => plan.ranges.map((r) => `${r.key.configName}:${r.after}..${r.upTo}`);

describe('planStart: config watch', () => {
  const scope = { userId: USER, configName: 'c' };

  it("without a start: the current version as the snapshot (the channel's own event object), resume point V-1", () => {
    const now = current(['c', 7]);
    const plan = planStart(scope, configWatch(undefined), now);
    expect(plan.snapshot).toHaveLength(1);
    expect(plan.snapshot[0]).toBe(now.get('c'));
    expect(plan.ranges).toEqual([]);
    expect(plan.marker).toBe(false);
    expect([...plan.accepted]).toEqual([['c', 7]]);
    // Resuming after 6 gives the snapshot (7) again, then what followed.
    expect(plan.lastDelivered).toBe(6);
  });

  it('without a start, of a config that does not exist yet: nothing first, version 1 is taken live, resume point 0', () => {
    const plan = planStart(scope, configWatch(undefined), current());
    expect(plan.snapshot).toEqual([]);
    expect(plan.ranges).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 0]]);
    expect(plan.lastDelivered).toBe(0);
  });

  it('from a start behind the current version: one history range up to it, resume point the start', () => {
    const plan = planStart(scope, configWatch(3), current(['c', 10]));
    expect(plan.snapshot).toEqual([]);
    expect(plan.ranges).toEqual([{ key: { userId: USER, configName: 'c' }, after: 3, upTo: 10 }]);
    expect([...plan.accepted]).toEqual([['c', 10]]);
    expect(plan.lastDelivered).toBe(3);
  });

  it('from 0: the whole history', () => {
    expect(rangesOf(planStart(scope, configWatch(0), current(['c', 4])))).toEqual(['c:0..4']);
  });

  it('from the current version: no history, the next version is taken live', () => {
    const plan = planStart(scope, configWatch(10), current(['c', 10]));
    expect(plan.ranges).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 10]]);
    expect(plan.lastDelivered).toBe(10);
  });

  it('from a start ahead of the current version: nothing now; versions up to the start are skipped live', () => {
    const plan = planStart(scope, configWatch(4), current(['c', 2]));
    expect(plan.snapshot).toEqual([]);
    expect(plan.ranges).toEqual([]);
    // 3 and 4 are not taken when they are written; 5 is.
    expect([...plan.accepted]).toEqual([['c', 4]]);
    expect(plan.lastDelivered).toBe(4);
  });

  it('from a start, of a config that does not exist yet', () => {
    const plan = planStart(scope, configWatch(0), current());
    expect(plan.ranges).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 0]]);
    expect(plan.lastDelivered).toBe(0);
  });

  it('has no marker', () => {
    for (const after of [undefined, 0, 5])
      expect(planStart(scope, configWatch(after), current(['c', 3])).marker).toBe(false);
  });
});

describe('planStart: user watch', () => {
  const scope = { userId: USER };

  it("without known versions: every current version in the channel's order, then the marker; no resume point", () => {
    const now = current(['b', 2], ['a', 1], ['c', 5]);
    const plan = planStart(scope, userWatch(), now);
    expect(versionsOf(plan)).toEqual(['b@2', 'a@1', 'c@5']);
    expect(plan.snapshot[0]).toBe(now.get('b'));
    expect(plan.ranges).toEqual([]);
    expect(plan.marker).toBe(true);
    expect(Object.fromEntries(plan.accepted)).toEqual({ a: 1, b: 2, c: 5 });
    expect(plan.lastDelivered).toBeUndefined();
  });

  it('for a user without configs: the marker alone', () => {
    const plan = planStart(scope, userWatch(), current());
    expect(plan.snapshot).toEqual([]);
    expect(plan.ranges).toEqual([]);
    expect(plan.marker).toBe(true);
    expect(plan.accepted.size).toBe(0);
  });

  it('with known versions: history after each known one that is behind, the current version of the others', () => {
    const plan = planStart(scope, userWatch({ a: 1, b: 1, c: 3 }), current(['a', 2], ['b', 3], ['c', 3], ['d', 1]));
    expect(versionsOf(plan)).toEqual(['d@1']);
    expect(rangesOf(plan)).toEqual(['a:1..2', 'b:1..3']);
    expect(plan.marker).toBe(true);
    expect(Object.fromEntries(plan.accepted)).toEqual({ a: 2, b: 3, c: 3, d: 1 });
  });

  it('a known version ahead of the current one: nothing now, versions up to it skipped live', () => {
    const plan = planStart(scope, userWatch({ a: 9 }), current(['a', 4]));
    expect(plan.snapshot).toEqual([]);
    expect(plan.ranges).toEqual([]);
    expect(Object.fromEntries(plan.accepted)).toEqual({ a: 9 });
  });

  it('a known config the channel has not seen: its versions after the known one arrive live', () => {
    const plan = planStart(scope, userWatch({ gone: 3 }), current(['a', 1]));
    expect(versionsOf(plan)).toEqual(['a@1']);
    expect(plan.ranges).toEqual([]);
    expect(Object.fromEntries(plan.accepted)).toEqual({ a: 1, gone: 3 });
  });
});

describe('planStart: invariants', () => {
  it('rejects a start that does not fit the scope with an INTERNAL CfgdError', () => {
    const cases: [{ userId: string; configName?: string }, WatchStart][] = [
      [{ userId: USER }, configWatch(undefined)],
      [{ userId: USER, configName: 'c' }, userWatch()],
    ];
    for (const [scope, start] of cases) {
      let thrown: unknown;
      try {
        planStart(scope, start, current());
      } catch (error: unknown) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CfgdError);
      expect(thrown).toMatchObject({ kind: 'internal', reason: 'WATCH_START_MISMATCH' });
    }
  });

  it('is pure: it changes neither its inputs nor an earlier plan', () => {
    const now = current(['a', 3]);
    const known = new Map([['a', 1]]);
    const first = planStart({ userId: USER }, { scope: 'user', known }, now);
    first.accepted.set('a', 99);
    const second = planStart({ userId: USER }, { scope: 'user', known }, now);
    expect(Object.fromEntries(second.accepted)).toEqual({ a: 3 });
    expect([...known]).toEqual([['a', 1]]);
    expect([...now.keys()]).toEqual(['a']);
  });

  // The core guarantee, per config: what the plan hands out, followed by every later version
  // taken live (each one directly after `accepted`), is exactly the versions the client lacks,
  // in order, each once.
  it('with the live versions that follow it, hands out exactly the versions after the start, each once (property)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd');
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.integer({ min: 1, max: 30 })),
        fc.dictionary(name, fc.integer({ min: 0, max: 40 })),
        fc.integer({ min: 0, max: 10 }),
        (latest, known, written) => {
          const plan = planStart({ userId: USER }, userWatch(known), current(...Object.entries(latest)));
          for (const config of new Set([...Object.keys(latest), ...Object.keys(known)])) {
            const now = latest[config] ?? 0;
            const handedOut = [
              ...plan.snapshot.filter((e) => e.version.key.configName === config).map((e) => e.version.version),
              ...plan.ranges.filter((r) => r.key.configName === config).flatMap((r) => range(r.after + 1, r.upTo)),
            ];
            // Live: the channel dispatches now+1 … now+written; the stream takes those above `accepted`.
            const accepted = plan.accepted.get(config) ?? 0;
            const live = range(now + 1, now + written).filter((v) => v > accepted);
            const startAfter = known[config] ?? Math.max(0, now - 1);
            const expected = range(startAfter + 1, now + written);
            expect([...handedOut, ...live]).toEqual(expected);
          }
        },
      ),
    );
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
