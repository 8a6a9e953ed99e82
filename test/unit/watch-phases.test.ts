/**
 * The phases of one watch stream (history → marker → live → ended), driven
 * through the hub over an in-memory store whose history reads a test can hold.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WatchHub, type WatchEvent, type WatchStream } from '../../src/app/watch-hub.js';
import { Watcher } from '../../src/app/watch/watcher.js';
import { CfgdError, planWrite, type ConfigKey } from '../../src/domain/index.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';

interface Setup {
  store: EmbeddedStore;
  hub: WatchHub;
  /** Reads of `versionsAfter` matching `when` wait until `release`. */
  hold(when: (after: number, limit: number) => boolean): void;
  release(): void;
  held(): number;
}

const stores: EmbeddedStore[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const store of stores.splice(0)) await store.close();
});

function setup(maxQueuedEvents = 100, heartbeatMs = 0): Setup {
  const store = new EmbeddedStore({ path: ':memory:', sync: 'normal' });
  stores.push(store);
  const read = store.versionsAfter.bind(store);
  let holding: ((after: number, limit: number) => boolean) | undefined;
  const waiting: (() => void)[] = [];
  store.versionsAfter = async (key, after, limit) => {
    if (holding?.(after, limit) === true) await new Promise<void>((resolve) => waiting.push(resolve));
    return read(key, after, limit);
  };
  return {
    store,
    hub: new WatchHub({ store, maxQueuedEvents, heartbeatMs, log: { error: () => {} } }),
    hold: (when) => (holding = when),
    release: () => {
      holding = undefined;
      for (const resolve of waiting.splice(0)) resolve();
    },
    held: () => waiting.length,
  };
}

const key: ConfigKey = { userId: 'u', configName: 'c' };
const put = (store: EmbeddedStore, k: ConfigKey, n: number) =>
  store.write(k, (current) =>
    planWrite(k, current, { values: { n }, expectedVersion: undefined, author: 't', now: new Date() }),
  );
const putMany = async (store: EmbeddedStore, k: ConfigKey, count: number) => {
  for (let n = 1; n <= count; n++) await put(store, k, n);
};
const turn = () => new Promise((resolve) => setImmediate(resolve));

function watcher(stream: WatchStream): Watcher {
  expect(stream).toBeInstanceOf(Watcher);
  return stream as Watcher;
}

async function take(stream: WatchStream, count: number): Promise<string[]> {
  const iterator = stream[Symbol.asyncIterator]();
  const out: string[] = [];
  while (out.length < count) out.push(describe1((await iterator.next()).value as WatchEvent));
  return out;
}

/** `name@version`, `|` for the marker, `.` for PROGRESS. */
function describe1(event: WatchEvent): string {
  if (event.kind === 'version') return `${event.version.key.configName}@${event.version.version}`;
  return event.kind === 'progress' ? '.' : '|';
}

describe('watch stream phases', () => {
  it('a config watch without a start is live at once: its snapshot first, then the live queue', async () => {
    const { store, hub } = setup();
    await putMany(store, key, 3);
    const stream = watcher(await hub.open(key, { scope: 'config', after: undefined }, new AbortController().signal));
    expect(stream.phase).toBe('live');
    await put(store, key, 4);
    expect(await take(stream, 2)).toEqual(['c@3', 'c@4']);
    expect(stream.phase).toBe('live');
    stream.close();
  });

  it('a config watch from a start reads its history batch by batch, and is live only once the last batch is read', async () => {
    const { store, hub } = setup(1000);
    await putMany(store, key, 300); // Two batches: 256, then 44.
    const stream = watcher(await hub.open(key, { scope: 'config', after: 0 }, new AbortController().signal));
    expect(stream.phase).toBe('history');
    expect(await take(stream, 256)).toHaveLength(256);
    // The first batch is handed out; the second is not read yet.
    expect(stream.phase).toBe('history');
    expect(await take(stream, 1)).toEqual(['c@257']);
    expect(stream.phase).toBe('live');
    // Written while the history was read: it waited in the live queue, after the history.
    await put(store, key, 301);
    const rest = await take(stream, 44);
    expect(rest.at(0)).toBe('c@258');
    expect(rest.at(-1)).toBe('c@301');
    stream.close();
  });

  it('a user watch goes history → marker → live, handing out the snapshot, the history, then the marker', async () => {
    const { store, hub } = setup();
    const a = { userId: 'u', configName: 'a' };
    const b = { userId: 'u', configName: 'b' };
    await putMany(store, a, 2);
    await put(store, b, 1);
    const stream = watcher(
      await hub.open({ userId: 'u' }, { scope: 'user', known: new Map([['a', 1]]) }, new AbortController().signal),
    );
    expect(stream.phase).toBe('history');
    expect(await take(stream, 1)).toEqual(['b@1']); // The snapshot is handed out first, still in history.
    expect(stream.phase).toBe('history');
    expect(await take(stream, 1)).toEqual(['a@2']);
    expect(stream.phase).toBe('marker');
    expect(await take(stream, 1)).toEqual(['|']);
    expect(stream.phase).toBe('live');
    await put(store, b, 2);
    expect(await take(stream, 1)).toEqual(['b@2']);
    stream.close();
  });

  it('a user watch with no history to read starts at the marker', async () => {
    const { store, hub } = setup();
    await put(store, { userId: 'u', configName: 'a' }, 1);
    const stream = watcher(
      await hub.open({ userId: 'u' }, { scope: 'user', known: new Map() }, new AbortController().signal),
    );
    expect(stream.phase).toBe('marker');
    expect(await take(stream, 2)).toEqual(['a@1', '|']);
    expect(stream.phase).toBe('live');
    stream.close();
  });

  it('ends from every phase: the reader gets done, and the stream, its channel and the subscription are released', async () => {
    const { store, hub } = setup();
    await putMany(store, key, 3);
    await put(store, { userId: 'u', configName: 'a' }, 1);
    const opens: [string, () => Promise<WatchStream>][] = [
      ['history', () => hub.open(key, { scope: 'config', after: 0 }, new AbortController().signal)],
      ['marker', () => hub.open({ userId: 'u' }, { scope: 'user', known: new Map() }, new AbortController().signal)],
      ['live', () => hub.open(key, { scope: 'config', after: 3 }, new AbortController().signal)],
    ];
    for (const [phase, open] of opens) {
      const stream = watcher(await open());
      expect(stream.phase).toBe(phase);
      stream.close();
      expect(stream.phase).toBe('ended');
      expect(await stream[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
      expect(hub.stats()).toMatchObject({ watches: 0, channels: 0, queuedEvents: 0 });
      expect(store.stats().subscriptions).toBe(0);
    }
  });

  it('closed while a history read is in flight: the read is dropped and the reader gets done', async () => {
    const { store, hub, hold, release, held } = setup();
    await putMany(store, key, 3);
    hold((after) => after === 0);
    const stream = watcher(await hub.open(key, { scope: 'config', after: 0 }, new AbortController().signal));
    const reading = stream[Symbol.asyncIterator]().next();
    await vi.waitFor(() => expect(held()).toBe(1));
    stream.close();
    release();
    expect(await reading).toEqual({ done: true, value: undefined });
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
  });

  it('a cancelled stream ends, from any phase, by throwing the reason', async () => {
    const { store, hub, hold, held } = setup();
    await putMany(store, key, 3);
    hold((after) => after === 0);
    const controller = new AbortController();
    const stream = watcher(await hub.open(key, { scope: 'config', after: 0 }, controller.signal));
    const reading = stream[Symbol.asyncIterator]().next();
    await vi.waitFor(() => expect(held()).toBe(1));
    const reason = new CfgdError('cancelled', 'CANCELLED', 'gone');
    controller.abort(reason);
    expect(stream.phase).toBe('ended');
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
    // The held read never comes back; the next call answers at once.
    void reading.catch(() => {});
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toBe(reason);
  });

  it('closing wakes a reader that waits for a live event', async () => {
    const { hub } = setup();
    const stream = watcher(await hub.open(key, { scope: 'config', after: undefined }, new AbortController().signal));
    const waiting = stream[Symbol.asyncIterator]().next();
    await turn();
    stream.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('a reader parked in next() gets the next version directly, and the abort reason when the stream is cancelled', async () => {
    const { store, hub } = setup();
    const controller = new AbortController();
    const stream = watcher(await hub.open(key, { scope: 'config', after: undefined }, controller.signal));
    const iterator = stream[Symbol.asyncIterator]();
    const first = iterator.next();
    await turn();
    await put(store, key, 1);
    expect(await first).toMatchObject({ done: false, value: { kind: 'version', version: { version: 1 } } });
    // Handed straight to the parked reader: it never waited in the queue.
    expect(stream.queued).toBe(0);
    const second = iterator.next();
    await turn();
    const reason = new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'bye');
    controller.abort(reason);
    await expect(second).rejects.toBe(reason);
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0 });
  });

  it('PROGRESS goes only to a live stream, never ahead of the history or the marker', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { store, hub, hold, release, held } = setup(100, 20);
    const a = { userId: 'u', configName: 'a' };
    await putMany(store, a, 2);
    hold((after) => after === 1);
    const stream = watcher(
      await hub.open({ userId: 'u' }, { scope: 'user', known: new Map([['a', 1]]) }, new AbortController().signal),
    );
    const first = take(stream, 1);
    await vi.waitFor(() => expect(held()).toBe(1));
    vi.advanceTimersByTime(20);
    expect(stream.phase).toBe('history');
    expect(stream.queued).toBe(0);
    release();
    expect(await first).toEqual(['a@2']);
    vi.advanceTimersByTime(20);
    expect(stream.phase).toBe('marker');
    expect(stream.queued).toBe(0);
    expect(await take(stream, 1)).toEqual(['|']);
    // The marker was traffic since the last tick: this tick sends nothing, the next one does.
    vi.advanceTimersByTime(20);
    expect(stream.queued).toBe(0);
    vi.advanceTimersByTime(20);
    expect(stream.queued).toBe(1);
    expect(await take(stream, 1)).toEqual(['.']);
    stream.close();
  });

  it('overflows in any phase, and the resume point is the last version handed out', async () => {
    const { store, hub, hold, held } = setup(2);
    await putMany(store, key, 5);
    // In history, nothing handed out yet: resume after the start.
    hold((after) => after === 0);
    const inHistory = watcher(await hub.open(key, { scope: 'config', after: 0 }, new AbortController().signal));
    void inHistory[Symbol.asyncIterator]()
      .next()
      .catch(() => {});
    await vi.waitFor(() => expect(held()).toBe(1));
    // Live, with fetched history not yet handed out: resume after what was.
    const reading = watcher(await hub.open(key, { scope: 'config', after: 1 }, new AbortController().signal));
    expect(await take(reading, 2)).toEqual(['c@2', 'c@3']);
    expect(reading.phase).toBe('live');
    for (let n = 6; n <= 8; n++) {
      await put(store, key, n);
      await turn();
    }
    expect(inHistory.phase).toBe('ended');
    expect((inHistory.ended.reason as CfgdError).metadata.resume_start_version).toBe('0');
    expect(reading.phase).toBe('ended');
    expect((reading.ended.reason as CfgdError).metadata.resume_start_version).toBe('3');
    expect(hub.stats()).toMatchObject({ watches: 0, channels: 0, overflowed: 2 });
  });
});
