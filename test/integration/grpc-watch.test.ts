import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, opened, statusDetails, type TestClient } from '../helpers/client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';
import { WatchEventType } from '../../generated/cfgd/v1/config_service.js';

let server: TestServer;
let client: TestClient;
let n = 0;
const fresh = (): { userId: string; configName: string } => ({ userId: 'w', configName: `watch-${++n}` });
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.stop());

async function writeVersions(key: { userId: string; configName: string }, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await client.put({ ...key, values: { i } });
}

describe('Watch', () => {
  it('without start_version sends the current state first, then live versions', async () => {
    const key = fresh();
    await writeVersions(key, 1, 3);
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === 3);
    await opened(stream);
    await writeVersions(key, 4, 5);
    const { events } = await result;
    expect(events.map((e) => e.config?.version)).toEqual([3, 4, 5]);
    expect(events[0]?.config?.values).toEqual({ i: 3 });
    expect(events[1]?.auditEntry?.changes).toEqual([{ action: 2, key: 'i', value: 4, oldValue: 3 }]);
    expect(events[2]?.config?.name).toBe(`users/w/configs/${key.configName}`);
  });

  it('waits for a config that does not exist yet and delivers it from version 1', async () => {
    const key = fresh();
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === 2);
    await opened(stream);
    await writeVersions(key, 1, 2);
    expect((await result).events.map((e) => e.config?.version)).toEqual([1, 2]);
  });

  it('from start_version delivers every later version, then live ones', async () => {
    const key = fresh();
    await writeVersions(key, 1, 10);
    const all = collect(client.watch({ ...key, startVersion: 0 }), (events) => events.length === 12);
    const tail = collect(client.watch({ ...key, startVersion: 7 }), (events) => events.length === 5);
    await writeVersions(key, 11, 12);
    expect((await all).events.map((e) => e.config?.version)).toEqual(range(1, 12));
    expect((await tail).events.map((e) => e.config?.version)).toEqual(range(8, 12));
  });

  it('a start_version beyond the latest (a store restored from an older backup) starts with a RESYNC of the current state', async () => {
    const key = fresh();
    await writeVersions(key, 1, 2);
    const stream = client.watch({ ...key, startVersion: 4 });
    const result = collect(stream, (events) => events.length === 4);
    await opened(stream);
    await writeVersions(key, 3, 5);
    const { events } = await result;
    // Versions 3 and 4 of this store are not the client's 3 and 4: they are handed out after the state.
    expect(events.map((e) => [WatchEventType[e.type], e.config?.version])).toEqual([
      ['WATCH_EVENT_TYPE_RESYNC', 2],
      ['WATCH_EVENT_TYPE_VERSION', 3],
      ['WATCH_EVENT_TYPE_VERSION', 4],
      ['WATCH_EVENT_TYPE_VERSION', 5],
    ]);
    expect(events[0]?.config?.values).toEqual((await client.get({ ...key, version: 2 })).config?.values);
  });

  it('resumes with no gap and no duplicate while writes race the switch from history to live', async () => {
    const key = fresh();
    await writeVersions(key, 1, 100);
    const last = 400;
    // Writers on two channels keep going while watches open at different points.
    const other = server.client();
    let next = 101;
    const writer = async (c: TestClient): Promise<void> => {
      while (next <= last) {
        next++;
        await c.put({ ...key, values: { w: Math.random() } });
      }
    };
    const writing = Promise.all([writer(client), writer(other)]);
    const watches: Promise<{ start: number; versions: number[] }>[] = [];
    for (const start of [0, 50, 99, 100]) {
      watches.push(
        collect(
          client.watch({ ...key, startVersion: start }),
          (events) => events.at(-1)?.config?.version === last,
        ).then(({ events }) => ({ start, versions: events.map((e) => e.config?.version ?? -1) })),
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await writing;
    for (const { start, versions } of await Promise.all(watches)) {
      expect(versions).toEqual(range(start + 1, last));
    }
    expect((await client.get(key)).config?.version).toBe(last);
  });

  it('every event carries the full values and the audit entry of its version', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1, b: 2 } });
    await client.put({ ...key, values: { b: 3, c: 4 } });
    const { events } = await collect(client.watch({ ...key, startVersion: 0 }), (e) => e.length === 2);
    expect(events[1]?.config?.values).toEqual({ b: 3, c: 4 });
    expect(events[1]?.auditEntry).toMatchObject({
      version: 2,
      author: 'anonymous',
      changes: [
        { action: 3, key: 'a', value: 1 },
        { action: 2, key: 'b', value: 3, oldValue: 2 },
        { action: 1, key: 'c', value: 4 },
      ],
    });
  });

  it('rejects invalid requests with INVALID_ARGUMENT on the stream', async () => {
    for (const request of [
      { userId: 'bad/name', configName: 'x' },
      { userId: 'u', configName: 'x', startVersion: -3 },
      { userId: 'u', configName: '', startVersion: 1 },
      { userId: 'u', configName: 'x', knownVersions: { x: 1 } },
      { userId: 'u', configName: '', knownVersions: { 'bad name': 1 } },
      { userId: 'u', configName: '', knownVersions: { ok: -1 } },
    ]) {
      const { error } = await collect(client.watch(request), () => false);
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(statusDetails(error!).errorInfo?.domain).toBe('cfgd.v1');
    }
  });

  it('client cancellation releases the subscription and the watch', async () => {
    const key = fresh();
    // Streams of earlier tests were cancelled by their clients: wait until all are released.
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(0));
    const before = 0;
    const streams = [client.watch(key), client.watch({ ...key, startVersion: 0 }), server.client().watch(key)];
    await Promise.all(streams.map(opened));
    // Three streams of one config share one store subscription.
    await eventually(() => expect(server.cfgd.app.stats().watches).toBe(before + 3));
    expect(server.cfgd.store.stats().subscriptions).toBe(before + 1);
    const ends = streams.map((stream) => new Promise<ServiceError>((resolve) => stream.once('error', resolve)));
    for (const stream of streams) stream.cancel();
    for (const error of await Promise.all(ends)) expect(error.code).toBe(status.CANCELLED);
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(before));
    expect(server.cfgd.app.stats()).toMatchObject({ watches: before, channels: 0, queuedEvents: 0 });
  });

  it('a deadline ends the stream with DEADLINE_EXCEEDED and releases it', async () => {
    const key = fresh();
    // Streams of earlier tests were cancelled by their clients: wait until all are released.
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(0));
    const before = 0;
    const stream = client.raw.watch({ ...key, startVersion: undefined, knownVersions: {} }, new Metadata(), {
      deadline: Date.now() + 300,
    });
    const { error } = await collect(stream, () => false);
    expect(error?.code).toBe(status.DEADLINE_EXCEEDED);
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(before));
    expect(server.cfgd.app.stats()).toMatchObject({ watches: 0, channels: 0 });
  });
});

describe('Watch and shutdown', () => {
  it('server shutdown ends open watches with UNAVAILABLE', async () => {
    const own = await startTestServer();
    const c = own.client();
    const key = { userId: 'w', configName: 'shutdown' };
    await c.put({ ...key, values: { a: 1 } });
    const streams = [c.watch(key), c.watch({ ...key, startVersion: 0 })];
    const results = streams.map((stream) => collect(stream, () => false));
    await Promise.all(streams.map(opened));
    await eventually(() => expect(own.cfgd.app.stats().watches).toBe(2));
    expect(own.cfgd.store.stats().subscriptions).toBe(1);
    const stopping = own.stop();
    for (const { events, error } of await Promise.all(results)) {
      expect(events.map((e) => e.config?.version)).toEqual([1]);
      expect(error?.code).toBe(status.UNAVAILABLE);
      expect(statusDetails(error!).errorInfo?.reason).toBe('SERVER_SHUTTING_DOWN');
    }
    await stopping;
    expect(own.cfgd.app.stats()).toMatchObject({ watches: 0, channels: 0, queuedEvents: 0 });
  });
});
