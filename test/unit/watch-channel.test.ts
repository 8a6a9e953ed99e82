/**
 * A channel's lifetime (reference counting it owns) and the watch module's
 * invariant violations, which are server faults: CfgdError 'internal' with a
 * readable message, logged once by the hub.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WatchHub, type VersionEvent, type WatchLog, type WatchStream } from '../../src/app/watch-hub.js';
import { Channel, type ChannelMember } from '../../src/app/watch/channel.js';
import { planStart } from '../../src/app/watch/start-plan.js';
import type { ResyncEvent } from '../../src/app/watch/watch-event.js';
import { Watcher } from '../../src/app/watch/watcher.js';
import { CfgdError, planWrite, type ConfigKey, type ConfigVersion } from '../../src/domain/index.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { toWireError } from '../../src/transport/status.js';

type Tamper = (after: number, limit: number, versions: ConfigVersion[]) => ConfigVersion[];

const stores: EmbeddedStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** An in-memory store whose `versionsAfter` answers can be changed by `tamper`. */
function tamperableStore(): { store: EmbeddedStore; tamper(change: Tamper | undefined): void } {
  const store = new EmbeddedStore({ path: ':memory:', sync: 'normal' });
  stores.push(store);
  const read = store.versionsAfter.bind(store);
  let change: Tamper | undefined;
  store.versionsAfter = async (key, after, limit) => {
    const versions = await read(key, after, limit);
    return change === undefined ? versions : change(after, limit, versions);
  };
  return { store, tamper: (next) => (change = next) };
}

/** A log that records what it is given. */
function recordingLog(): WatchLog & { entries: { fields: Record<string, unknown>; message: string }[] } {
  const entries: { fields: Record<string, unknown>; message: string }[] = [];
  return { entries, error: (fields, message) => entries.push({ fields: fields as Record<string, unknown>, message }) };
}

const key: ConfigKey = { userId: 'u', configName: 'c' };
const put = (store: EmbeddedStore, n: number) =>
  store.write(key, (current) =>
    planWrite(key, current, { values: { n }, expectedVersion: undefined, author: 't', now: new Date() }),
  );
const putMany = async (store: EmbeddedStore, count: number) => {
  for (let n = 1; n <= count; n++) await put(store, n);
};
const without = (version: number) => (_after: number, _limit: number, versions: ConfigVersion[]) =>
  versions.filter((v) => v.version !== version);

async function next(stream: WatchStream): Promise<number> {
  const { value } = await stream[Symbol.asyncIterator]().next();
  return value?.kind === 'version' ? value.version.version : -1;
}

class RecordingMember implements ChannelMember {
  readonly offers: (VersionEvent | ResyncEvent)[] = [];
  failure: Error | undefined;
  offer(_name: string, event: VersionEvent | ResyncEvent): void {
    this.offers.push(event);
  }
  fail(reason: Error): void {
    this.failure = reason;
  }
}

describe('Channel reference counting', () => {
  it('closes itself, releasing its store subscription, when its last reference is released', async () => {
    const { store } = tamperableStore();
    const onClosed = vi.fn();
    const channel = new Channel(key, { store }, onClosed);
    channel.retain();
    channel.retain();
    await channel.ready;
    expect(channel.phase).toBe('running');
    expect(store.stats().subscriptions).toBe(1);
    channel.release();
    expect(channel.phase).toBe('running');
    channel.release();
    expect(channel.phase).toBe('closed');
    expect(store.stats().subscriptions).toBe(0);
    expect(onClosed).toHaveBeenCalledTimes(1);
  });

  it('a member takes over a reference, and leaving gives it back once, however often it leaves', async () => {
    const { store } = tamperableStore();
    const channel = new Channel(key, { store }, () => {});
    const member = new RecordingMember();
    channel.retain(); // the member's
    channel.retain(); // another open's
    await channel.ready;
    channel.join(member);
    expect(channel.size).toBe(1);
    channel.leave(member);
    channel.leave(member);
    expect(channel.size).toBe(0);
    expect(channel.phase).toBe('running');
    channel.release();
    expect(channel.phase).toBe('closed');
  });

  it('released before its subscription is set up: ready rejects with CANCELLED and the subscription is dropped', async () => {
    const { store } = tamperableStore();
    const channel = new Channel(key, { store }, () => {});
    channel.retain();
    channel.release();
    expect(channel.phase).toBe('closed');
    await expect(channel.ready).rejects.toMatchObject({ kind: 'cancelled', reason: 'CANCELLED' });
    expect(store.stats().subscriptions).toBe(0);
  });

  it('resynchronises its members from the current state when retention pruned versions it had not read', async () => {
    const { store, tamper } = tamperableStore();
    const channel = new Channel(key, { store, retryMs: 20 }, () => {});
    const member = new RecordingMember();
    channel.retain();
    await channel.ready;
    channel.join(member);
    await putMany(store, 3);
    await vi.waitFor(() => expect(member.offers).toHaveLength(3));
    // The store is out of reach while 17 more versions are written and all but the newest 6 pruned.
    tamper(() => {
      throw new CfgdError('unavailable', 'DATABASE_UNAVAILABLE', 'out of reach');
    });
    for (let n = 4; n <= 20; n++) await put(store, n);
    await store.prune(key, 15);
    tamper(undefined);
    await vi.waitFor(() => expect(member.offers.length).toBeGreaterThan(3));
    expect(member.failure).toBeUndefined();
    expect(member.offers.slice(3).map((e) => [e.kind, e.version.version])).toEqual([['resync', 20]]);
    // It goes on live from there.
    await put(store, 21);
    await vi.waitFor(() => expect(member.offers.at(-1)?.version.version).toBe(21));
    expect(member.offers.at(-1)?.kind).toBe('version');
    channel.leave(member);
  });

  it('dispatches one event object per version to every member, each config in order', async () => {
    const { store } = tamperableStore();
    const channel = new Channel(key, { store }, () => {});
    const members = [new RecordingMember(), new RecordingMember()];
    members.forEach(() => channel.retain());
    await channel.ready;
    for (const member of members) channel.join(member);
    await putMany(store, 3);
    await vi.waitFor(() => expect(members[1]!.offers).toHaveLength(3));
    expect(members[0]!.offers.map((e) => e.version.version)).toEqual([1, 2, 3]);
    members[0]!.offers.forEach((event, i) => expect(members[1]!.offers[i]).toBe(event));
    // The channel's latest event is the one it dispatched: a snapshot shares it too.
    expect(channel.current.get('c')).toBe(members[0]!.offers[2]);
    for (const member of members) channel.leave(member);
    expect(channel.phase).toBe('closed');
  });

  it('a channel whose store read fails ends every member with the error, closes, and refuses to be joined', async () => {
    const { store, tamper } = tamperableStore();
    const onClosed = vi.fn();
    const channel = new Channel(key, { store }, onClosed);
    const members = [new RecordingMember(), new RecordingMember()];
    members.forEach(() => channel.retain());
    await channel.ready;
    for (const member of members) channel.join(member);
    const broken = new Error('disk on fire');
    tamper(() => {
      throw broken;
    });
    await put(store, 1);
    await vi.waitFor(() => expect(channel.phase).toBe('closed'));
    for (const member of members) expect(member.failure).toBe(broken);
    expect(onClosed).toHaveBeenCalledTimes(1);
    expect(store.stats().subscriptions).toBe(0);
    expect(() => channel.join(new RecordingMember())).toThrow(broken);
  });

  it('an open abandoned while another waits on the same channel leaves the channel to the other', async () => {
    const { store } = tamperableStore();
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0 });
    const abandoned = new AbortController();
    const first = hub.open(key, { scope: 'config', after: undefined }, abandoned.signal);
    const second = hub.open(key, { scope: 'config', after: undefined }, new AbortController().signal);
    abandoned.abort(new CfgdError('cancelled', 'CANCELLED', 'gone'));
    await expect(first).rejects.toThrow('gone');
    const stream = await second;
    expect(hub.stats()).toMatchObject({ watches: 1, channels: 1 });
    await put(store, 1);
    expect(await next(stream)).toBe(1);
    stream.close();
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    expect(store.stats().subscriptions).toBe(0);
  });
});

describe('watch invariants', () => {
  it('a version missing from a channel read ends every stream of the channel with INTERNAL WATCH_SEQUENCE_BROKEN, logged once', async () => {
    const { store, tamper } = tamperableStore();
    const log = recordingLog();
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0, log });
    const signal = new AbortController().signal;
    const streams = [
      await hub.open(key, { scope: 'config', after: undefined }, signal),
      await hub.open(key, { scope: 'config', after: 0 }, signal),
    ];
    await put(store, 1);
    for (const stream of streams) expect(await next(stream)).toBe(1);
    tamper(without(2));
    await put(store, 2);
    await put(store, 3);
    for (const stream of streams) {
      const error = await stream[Symbol.asyncIterator]()
        .next()
        .then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
      expect(error).toBeInstanceOf(CfgdError);
      expect(error).toMatchObject({ kind: 'internal', reason: 'WATCH_SEQUENCE_BROKEN' });
      expect(stream.ended.reason).toBe(error);
    }
    expect(log.entries).toHaveLength(1);
    expect(log.entries[0]!.fields).toMatchObject({
      reason: 'WATCH_SEQUENCE_BROKEN',
      scope: 'users/u/configs/c',
      streams: 2,
    });
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    expect(store.stats().subscriptions).toBe(0);
  });

  it("a gap in a stream's history read ends that stream only, logged; the channel and its other streams go on", async () => {
    const { store, tamper } = tamperableStore();
    const log = recordingLog();
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0, log });
    await putMany(store, 5);
    const signal = new AbortController().signal;
    const live = await hub.open(key, { scope: 'config', after: 5 }, signal);
    tamper((after, _limit, versions) => (after === 0 ? versions.filter((v) => v.version !== 3) : versions));
    const fromStart = await hub.open(key, { scope: 'config', after: 0 }, signal);
    await expect(fromStart[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      kind: 'internal',
      reason: 'WATCH_SEQUENCE_BROKEN',
      message: 'users/u/configs/c: version 4 arrived after version 2; the watch expected version 3',
    });
    expect(log.entries.map((e) => e.fields.reason)).toEqual(['WATCH_SEQUENCE_BROKEN']);
    expect(hub.stats()).toMatchObject({ watches: 1, channels: 1 });
    await put(store, 6);
    expect(await next(live)).toBe(6);
    live.close();
  });

  it('a stream offered a version that skips one ends with WATCH_SEQUENCE_BROKEN instead of holding a gap', async () => {
    const { store } = tamperableStore();
    await putMany(store, 3);
    const log = recordingLog();
    const channel = new Channel(key, { store }, () => {});
    channel.retain();
    await channel.ready;
    const plan = planStart(key, { scope: 'config', after: undefined }, channel.current);
    const stream = new Watcher(
      channel,
      plan,
      new AbortController().signal,
      { store, maxQueuedEvents: 10, log },
      {
        onClose: () => {},
        onOverflow: () => {},
      },
    );
    channel.join(stream);
    const skipping = { ...channel.current.get('c')!.version, version: 5 };
    stream.offer('c', { kind: 'version', version: skipping });
    expect(stream.phase).toBe('ended');
    expect(stream.ended.reason).toMatchObject({
      kind: 'internal',
      reason: 'WATCH_SEQUENCE_BROKEN',
      metadata: { expected_version: '4', got_version: '5' },
    });
    expect(log.entries).toHaveLength(1);
    expect(channel.phase).toBe('closed');
  });

  it('a start that does not fit its scope is refused with INTERNAL WATCH_START_MISMATCH, logged, leaving no channel', async () => {
    const { store } = tamperableStore();
    const log = recordingLog();
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0, log });
    await expect(
      hub.open(key, { scope: 'user', known: new Map() }, new AbortController().signal),
    ).rejects.toMatchObject({
      kind: 'internal',
      reason: 'WATCH_START_MISMATCH',
    });
    expect(log.entries).toHaveLength(1);
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    expect(store.stats().subscriptions).toBe(0);
  });

  it('reaches clients as INTERNAL with its readable message and reason (not the generic "internal error")', () => {
    const onUnexpected = vi.fn();
    const wire = toWireError(
      new CfgdError(
        'internal',
        'WATCH_SEQUENCE_BROKEN',
        'users/u/configs/c: version 4 arrived after version 2; the watch expected version 3',
      ),
      onUnexpected,
    );
    expect(wire).toMatchObject({ grpcName: 'INTERNAL', httpStatus: 500, reason: 'WATCH_SEQUENCE_BROKEN' });
    expect(wire.message).toContain('version 4 arrived after version 2');
    // Transports log only errors that are not CfgdErrors: that is why the hub logs its faults itself.
    expect(onUnexpected).not.toHaveBeenCalled();
  });

  it("pino's Logger is a WatchLog: a fault is one JSON line at level error with its reason", async () => {
    const { store } = tamperableStore();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ base: null, timestamp: false }, sink).child({ component: 'watch' });
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0, log });
    await expect(
      hub.open({ userId: 'u' }, { scope: 'config', after: 0 }, new AbortController().signal),
    ).rejects.toThrow();
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 50, component: 'watch', reason: 'WATCH_START_MISMATCH', scope: 'users/u' });
    expect((entry.err as { message: string }).message).toContain('cannot open a watch of users/u');
  });

  it('without a log, a fault becomes a process warning rather than nothing', async () => {
    const { store } = tamperableStore();
    const hub = new WatchHub({ store, maxQueuedEvents: 10, heartbeatMs: 0 });
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    await expect(
      hub.open({ userId: 'u' }, { scope: 'config', after: 0 }, new AbortController().signal),
    ).rejects.toThrow();
    expect(await warned).toMatchObject({ reason: 'WATCH_START_MISMATCH' });
  });
});
