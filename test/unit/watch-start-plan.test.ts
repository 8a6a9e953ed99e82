import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  planStart,
  startsAhead,
  type StartPlan,
  type StoreBehind,
  type WatchStart,
} from '../../src/app/watch/start-plan.js';
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
  plan.snapshot.map((e) => `${e.kind === 'resync' ? 'resync ' : ''}${e.version.key.configName}@${e.version.version}`);
/** What the store had when the watch opened, of the configs it is behind on (undefined: nothing). */
function behind(...entries: [string, number | undefined][]): StoreBehind {
  return new Map(entries.map(([name, version]) => [name, version === undefined ? undefined : event(name, version)]));
}
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

describe('planStart: a store behind the client (restored from an older backup)', () => {
  const scope = { userId: USER, configName: 'c' };

  it("a config watch starts with a RESYNC of the store's state; what follows it is taken live", () => {
    const plan = planStart(scope, configWatch(7), current(['c', 3]), behind(['c', 3]));
    expect(versionsOf(plan)).toEqual(['resync c@3']);
    expect(plan.ranges).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 3]]);
    // Ended before the RESYNC is handed out, the client resumes from its own start and is told again.
    expect(plan.lastDelivered).toBe(7);
    expect(plan.resyncFirst.size).toBe(0);
  });

  it("the RESYNC is the later of the store's read and the channel's current version", () => {
    // The channel had not dispatched version 4 yet when the store was read.
    expect(versionsOf(planStart(scope, configWatch(7), current(['c', 3]), behind(['c', 4])))).toEqual(['resync c@4']);
    // A version committed after the read is already the channel's: it is the state, not a live version.
    const now = current(['c', 5]);
    const plan = planStart(scope, configWatch(7), now, behind(['c', 4]));
    expect(versionsOf(plan)).toEqual(['resync c@5']);
    expect(plan.snapshot[0]?.version).toBe(now.get('c')!.version);
    expect([...plan.accepted]).toEqual([['c', 5]]);
  });

  it('a config the store has no version of: nothing now, and its first version is the RESYNC', () => {
    const plan = planStart(scope, configWatch(4), current(), behind(['c', undefined]));
    expect(plan.snapshot).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 0]]);
    expect([...plan.resyncFirst]).toEqual(['c']);
  });

  it('a start the store is not behind on keeps waiting for the versions after it (a channel yet to dispatch them)', () => {
    const plan = planStart(scope, configWatch(4), current(['c', 2]), behind(['other', 1]));
    expect(plan.snapshot).toEqual([]);
    expect([...plan.accepted]).toEqual([['c', 4]]);
  });

  it('a user watch: a RESYNC for each config the store is behind on, history or snapshot for the others', () => {
    const plan = planStart(
      { userId: USER },
      userWatch({ a: 9, b: 1, gone: 3 }),
      current(['a', 4], ['b', 3], ['d', 1]),
      behind(['a', 4], ['gone', undefined]),
    );
    expect(versionsOf(plan)).toEqual(['resync a@4', 'd@1']);
    expect(rangesOf(plan)).toEqual(['b:1..3']);
    expect(plan.marker).toBe(true);
    expect(Object.fromEntries(plan.accepted)).toEqual({ a: 4, b: 3, d: 1, gone: 0 });
    expect([...plan.resyncFirst]).toEqual(['gone']);
    // A config the channel has not seen but the store has (its read found it): its state.
    const unseen = planStart({ userId: USER }, userWatch({ e: 5 }), current(), behind(['e', 2]));
    expect(versionsOf(unseen)).toEqual(['resync e@2']);
    expect(Object.fromEntries(unseen.accepted)).toEqual({ e: 2 });
  });

  it("startsAhead: the starts above the channel's current version, which the hub checks against the store", () => {
    const now = current(['a', 4], ['b', 3]);
    expect(startsAhead(scope, configWatch(undefined), current(['c', 1]))).toEqual([]);
    expect(startsAhead(scope, configWatch(1), current(['c', 1]))).toEqual([]);
    expect(startsAhead(scope, configWatch(2), current(['c', 1]))).toEqual([['c', 2]]);
    expect(startsAhead(scope, configWatch(0), current())).toEqual([]);
    expect(startsAhead({ userId: USER }, userWatch({ a: 5, b: 3, c: 1, z: 0 }), now)).toEqual([
      ['a', 5],
      ['c', 1],
    ]);
  });

  // Per config the store is behind on: a RESYNC of the state (or the first version, as the RESYNC),
  // then every later version live, each once, whatever the channel and the store's read held.
  it("hands out the store's state as a RESYNC and then every later version, each once (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 10 }),
        fc.boolean(),
        (read, lag, ahead, written, user) => {
          // The store read `read` (0: none); the channel may trail it by `lag`, or lead it by one.
          const channel = Math.max(0, read - lag + (lag === 3 ? 4 : 0));
          const after = Math.max(read, channel) + ahead;
          const now = channel === 0 ? current() : current(['c', channel]);
          const start = user ? userWatch({ c: after }) : configWatch(after);
          const plan = planStart(user ? { userId: USER } : scope, start, now, behind(['c', read || undefined]));
          const resyncs = plan.snapshot.filter((e) => e.kind === 'resync').map((e) => e.version.version);
          const live = range(channel + 1, channel + written).filter((v) => v > (plan.accepted.get('c') ?? 0));
          const state = Math.max(read, channel);
          expect(plan.ranges).toEqual([]);
          if (state === 0) {
            expect(resyncs).toEqual([]);
            expect([...plan.resyncFirst]).toEqual(['c']);
            expect(live).toEqual(range(1, written));
          } else {
            expect(resyncs).toEqual([state]);
            expect(plan.resyncFirst.size).toBe(0);
            expect(live).toEqual(range(state + 1, Math.max(state, channel + written)));
          }
        },
      ),
    );
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
