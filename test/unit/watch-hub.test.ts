import { afterEach, describe, expect, it, vi } from 'vitest';
import { WatchHub, type WatchEvent, type WatchStream } from '../../src/app/watch-hub.js';
import { CfgdError, planWrite, type ConfigKey } from '../../src/domain/index.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { sharedResponseEncoding } from '../../src/transport/grpc/shared-encoding.js';
import { watchResponse } from '../../src/transport/methods.js';
import { ConfigServiceService, WatchResponse } from '../../generated/cfgd/v1/config_service.js';

const stores: EmbeddedStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

function setup(maxQueuedEvents = 100, heartbeatMs = 0): { store: EmbeddedStore; hub: WatchHub } {
  const store = new EmbeddedStore({ path: ':memory:', sync: 'normal' });
  stores.push(store);
  return { store, hub: new WatchHub({ store, maxQueuedEvents, heartbeatMs }) };
}

const key: ConfigKey = { userId: 'u', configName: 'c' };
const put = (store: EmbeddedStore, n: number) =>
  store.write(key, (current) =>
    planWrite(key, current, { values: { n }, expectedVersion: undefined, author: 't', now: new Date() }),
  );

async function take(stream: WatchStream, count: number): Promise<WatchEvent[]> {
  const iterator = stream[Symbol.asyncIterator]();
  const events: WatchEvent[] = [];
  while (events.length < count) events.push((await iterator.next()).value as WatchEvent);
  return events;
}

describe('WatchHub', () => {
  it('shares one store subscription and one event object per version among the watchers of a config', async () => {
    const { store, hub } = setup();
    const signal = new AbortController().signal;
    const streams = await Promise.all(
      Array.from({ length: 50 }, () => hub.open(key, { scope: 'config', after: undefined }, signal)),
    );
    expect(store.stats().subscriptions).toBe(1);
    expect(hub.stats()).toMatchObject({ watches: 50, channels: 1 });
    await put(store, 1);
    const firsts = await Promise.all(streams.map(async (stream) => (await take(stream, 1))[0]!));
    expect(firsts[0]).toMatchObject({ kind: 'version', version: { version: 1 } });
    for (const event of firsts) expect(event).toBe(firsts[0]);

    // The wire message and its encoding are made once for all of them.
    const messages = new Set(firsts.map(watchResponse));
    expect(messages.size).toBe(1);
    let encodings = 0;
    const counting = {
      watch: {
        ...ConfigServiceService.watch,
        responseSerialize: (message: WatchResponse) => {
          encodings++;
          return ConfigServiceService.watch.responseSerialize(message);
        },
      },
    };
    const shared = sharedResponseEncoding(counting);
    const bytes = firsts.map((event) => shared.watch.responseSerialize(watchResponse(event)));
    expect(encodings).toBe(1);
    expect(WatchResponse.decode(bytes[49]!).config?.version).toBe(1);

    for (const stream of streams) stream.close();
    expect(store.stats().subscriptions).toBe(0);
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
  });

  it('ends a stream whose reader falls more than the bound behind, and only that one', async () => {
    const { store, hub } = setup(3);
    const signal = new AbortController().signal;
    const stalled = await hub.open(key, { scope: 'config', after: 0 }, signal);
    const reading = await hub.open(key, { scope: 'config', after: 0 }, signal);
    const read = take(reading, 6);
    for (let n = 1; n <= 6; n++) {
      await put(store, n);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await read).map((e) => (e.kind === 'version' ? e.version.version : e.kind))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(stalled.ended.aborted).toBe(true);
    const reason = stalled.ended.reason as CfgdError;
    expect(reason.kind).toBe('resource-exhausted');
    expect(reason.metadata.resume_start_version).toBe('0');
    await expect(stalled[Symbol.asyncIterator]().next()).rejects.toBe(reason);
    expect(hub.stats()).toMatchObject({ watches: 1, overflowed: 1, queuedEvents: 0 });
    reading.close();
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    expect(store.stats().subscriptions).toBe(0);
  });

  it('sends PROGRESS to an idle stream at each tick', async () => {
    const { hub } = setup(100, 20);
    const stream = await hub.open(key, { scope: 'config', after: undefined }, new AbortController().signal);
    const started = performance.now();
    expect(await take(stream, 2)).toEqual([{ kind: 'progress' }, { kind: 'progress' }]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    stream.close();
  });

  it('sends PROGRESS at every tick, not every other one (a PROGRESS is not traffic)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const { hub } = setup(100, 20);
      const stream = await hub.open(key, { scope: 'config', after: undefined }, new AbortController().signal);
      for (let tick = 1; tick <= 5; tick++) {
        vi.advanceTimersByTime(20);
        // Each tick finds the stream idle since the last one, so each queues one PROGRESS.
        expect(hub.stats().queuedEvents).toBe(1);
        expect(await take(stream, 1)).toEqual([{ kind: 'progress' }]);
      }
      stream.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('a stream that overflows before its first version resumes from where it started, not from 0', async () => {
    const { store, hub } = setup(3);
    for (let n = 1; n <= 5; n++) await put(store, n);
    const signal = new AbortController().signal;
    // Never read: the reader stalled before any version reached it.
    const fromFive = await hub.open(key, { scope: 'config', after: 5 }, signal);
    const current = await hub.open(key, { scope: 'config', after: undefined }, signal);
    for (let n = 6; n <= 9; n++) {
      await put(store, n);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const resume = (stream: WatchStream): string | undefined =>
      (stream.ended.reason as CfgdError | undefined)?.metadata.resume_start_version;
    // Resuming after 5 gives 6.. again: nothing the client has is repeated, nothing is lost.
    expect(resume(fromFive)).toBe('5');
    // The stream without a start version had not yet handed out its snapshot (5): resume after 4.
    expect(resume(current)).toBe('4');
    expect(hub.stats()).toMatchObject({ watches: 0, overflowed: 2 });
  });

  it('delivers every version once and in order across the switch from history to live, while writes race it', async () => {
    const { store, hub } = setup(10_000);
    for (let n = 1; n <= 600; n++) await put(store, n); // Several read batches of history.
    const last = 900;
    const writing = (async () => {
      for (let n = 601; n <= last; n++) {
        await put(store, n);
        if (n % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const signal = new AbortController().signal;
    const watches: Promise<{ first: number; versions: number[] }>[] = [];
    for (const after of [0, 100, 255, 256, 599, undefined, 600, 0]) {
      const stream = await hub.open(key, { scope: 'config', after }, signal);
      watches.push(
        (async () => {
          const versions: number[] = [];
          for await (const event of stream) {
            if (event.kind !== 'version') continue;
            versions.push(event.version.version);
            if (event.version.version === last) break;
          }
          return { first: after ?? versions[0]! - 1, versions };
        })(),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    await writing;
    for (const { first, versions } of await Promise.all(watches)) {
      expect(versions).toEqual(Array.from({ length: last - first }, (_, i) => first + 1 + i));
    }
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
  });

  it('a cancelled open leaves no channel behind', async () => {
    const { store, hub } = setup();
    const controller = new AbortController();
    const opening = hub.open(key, { scope: 'config', after: undefined }, controller.signal);
    controller.abort(new CfgdError('cancelled', 'CANCELLED', 'gone'));
    await expect(opening).rejects.toThrow('gone');
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    expect(store.stats().subscriptions).toBe(0);
  });

  describe('a start ahead of every version the store has (a store restored from an older backup)', () => {
    const label = (e: WatchEvent): string =>
      e.kind === 'version' || e.kind === 'resync'
        ? `${e.kind} ${e.version.key.configName}@${e.version.version}`
        : e.kind;
    const putTo = (store: EmbeddedStore, configName: string, n: number) => {
      const other = { userId: 'u', configName };
      return store.write(other, (current) =>
        planWrite(other, current, { values: { n }, expectedVersion: undefined, author: 't', now: new Date() }),
      );
    };

    it("a config watch gets a RESYNC of the store's state first, then the versions written after it", async () => {
      const { store, hub } = setup();
      for (let n = 1; n <= 3; n++) await put(store, n);
      const stream = await hub.open(key, { scope: 'config', after: 7 }, new AbortController().signal);
      const first = await take(stream, 1);
      expect(first.map(label)).toEqual(['resync c@3']);
      expect(first[0]).toMatchObject({ version: { values: { n: 3 } } });
      await put(store, 4);
      expect((await take(stream, 1)).map(label)).toEqual(['version c@4']);
      stream.close();
    });

    it('of a config the store has no version of, the first version written is the RESYNC', async () => {
      const { store, hub } = setup();
      const stream = await hub.open(key, { scope: 'config', after: 5 }, new AbortController().signal);
      await put(store, 1);
      await put(store, 2);
      expect((await take(stream, 2)).map(label)).toEqual(['resync c@1', 'version c@2']);
      stream.close();
    });

    it('a user watch gets a RESYNC of each config the store is behind on, before INITIAL_STATE_COMPLETE', async () => {
      const { store, hub } = setup();
      await putTo(store, 'a', 1);
      await putTo(store, 'b', 1);
      await putTo(store, 'b', 2);
      const known = new Map([
        ['a', 1],
        ['b', 6],
        ['gone', 4],
      ]);
      const stream = await hub.open({ userId: 'u' }, { scope: 'user', known }, new AbortController().signal);
      expect((await take(stream, 2)).map(label)).toEqual(['resync b@2', 'initial-state-complete']);
      await putTo(store, 'gone', 1);
      await putTo(store, 'b', 3);
      await putTo(store, 'gone', 2);
      await putTo(store, 'a', 2);
      expect((await take(stream, 4)).map(label)).toEqual([
        'resync gone@1',
        'version b@3',
        'version gone@2',
        'version a@2',
      ]);
      stream.close();
    });

    it('a start the channel has not dispatched yet, but the store has, is no RESYNC: the next version follows it', async () => {
      const { store, hub } = setup();
      const signal = new AbortController().signal;
      // An open channel, so that later watches join it and plan against what it has dispatched.
      const first = await hub.open(key, { scope: 'config', after: 0 }, signal);
      const reads = vi.spyOn(store, 'latest');
      for (let n = 1; n <= 20; n++) {
        await put(store, n);
        const written = 2 * n - 1;
        // Opened at once after the commit, often before the channel has read it.
        const stream = await hub.open(key, { scope: 'config', after: written }, signal);
        await put(store, 100 + n);
        expect((await take(stream, 1)).map(label)).toEqual([`version c@${written + 1}`]);
        stream.close();
      }
      // The channel trailed the store at each open: each start was checked against the store.
      expect(reads).toHaveBeenCalled();
      first.close();
    });
  });
});
