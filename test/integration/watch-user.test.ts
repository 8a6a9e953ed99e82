import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WatchEventType, type WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { collect, opened, type TestClient } from '../helpers/client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let client: TestClient;
let users = 0;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.stop());

const freshUser = (): string => `user${++users}-${Date.now()}`;
const MARKER = WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE;

/** `name@version` for version events, `|` for the initial-state marker. */
const describeEvents = (events: WatchResponse[]): string[] =>
  events.map((e) => (e.type === MARKER ? '|' : `${e.config!.configName}@${e.config!.version}`));

describe('Watch on a user', () => {
  it('sends the current state of every config, the marker, then changes to any of them', async () => {
    const userId = freshUser();
    await client.put({ userId, configName: 'b', values: { b: 1 } });
    await client.put({ userId, configName: 'b', values: { b: 2 } });
    await client.put({ userId, configName: 'a', values: { a: 1 } });
    await client.put({ userId: `${userId}-other`, configName: 'a', values: { not: 'mine' } });

    const stream = client.watch({ userId });
    const result = collect(stream, (events) => events.length === 5);
    const initial = new Promise<void>((resolve) =>
      stream.on('data', (e: WatchResponse) => e.type === MARKER && resolve()),
    );
    await initial;
    await client.put({ userId, configName: 'c', values: { c: 1 } });
    await client.put({ userId, configName: 'a', values: { a: 2 } });
    const { events, error } = await result;
    expect(error).toBeUndefined();
    expect(describeEvents(events)).toEqual(['a@1', 'b@2', '|', 'c@1', 'a@2']);
    // Each version event names its config and carries its values and audit entry.
    expect(events[4]?.config).toMatchObject({
      userId,
      configName: 'a',
      name: `users/${userId}/configs/a`,
      values: { a: 2 },
    });
    expect(events[4]?.auditEntry?.changes).toEqual([{ action: 2, key: 'a', value: 2, oldValue: 1 }]);
  });

  it('for a user without configs sends the marker alone, then the first config as it is created', async () => {
    const userId = freshUser();
    const stream = client.watch({ userId });
    const result = collect(stream, (events) => events.length === 2);
    await opened(stream);
    await client.put({ userId, configName: 'first', values: { x: 1 } });
    expect(describeEvents((await result).events)).toEqual(['|', 'first@1']);
  });

  it('reconnects with known versions and receives only what it missed', async () => {
    const userId = freshUser();
    for (const [name, count] of [
      ['a', 2],
      ['b', 1],
      ['c', 3],
    ] as const) {
      for (let i = 1; i <= count; i++) await client.put({ userId, configName: name, values: { i } });
    }
    // A client that had a@1, b@1 and c@3, then missed a@2, b@2, b@3 and the new config d.
    await client.put({ userId, configName: 'b', values: { i: 2 } });
    await client.put({ userId, configName: 'b', values: { i: 3 } });
    await client.put({ userId, configName: 'd', values: { i: 1 } });
    const { events } = await collect(
      client.watch({ userId, knownVersions: { a: 1, b: 1, c: 3 } }),
      (e) => e.at(-1)?.type === MARKER,
    );
    const seen = describeEvents(events);
    // Unknown configs start with their current version, known ones with every version after the known one.
    expect([...seen].sort()).toEqual(['a@2', 'b@2', 'b@3', 'd@1', '|'].sort());
    expect(seen.at(-1)).toBe('|');
    expect(seen.indexOf('b@2')).toBeLessThan(seen.indexOf('b@3'));
  });

  it('a stream joining a channel that is already open starts from the latest state', async () => {
    const userId = freshUser();
    await client.put({ userId, configName: 'x', values: { n: 1 } });
    const first = client.watch({ userId });
    const firstSeen: WatchResponse[] = [];
    first.on('data', (e: WatchResponse) => firstSeen.push(e));
    const firstEvents = collect(first, (e) => e.length === 5);
    await opened(first);
    const subscriptions = server.cfgd.store.stats().subscriptions;
    await client.put({ userId, configName: 'x', values: { n: 2 } });
    await client.put({ userId, configName: 'y', values: { n: 1 } });
    // Once the first stream has y@1, the channel has dispatched it.
    await eventually(() => expect(describeEvents(firstSeen)).toContain('y@1'));
    const second = client.watch({ userId });
    const secondEvents = collect(second, (e) => e.length === 4);
    const third = client.watch({ userId });
    const thirdEvents = collect(third, (e) => e.length === 3);
    await Promise.all([opened(second), opened(third)]);
    // They joined the first stream's channel: no new store subscription.
    expect(server.cfgd.store.stats().subscriptions).toBe(subscriptions);
    await client.put({ userId, configName: 'y', values: { n: 2 } });
    expect(describeEvents((await firstEvents).events)).toEqual(['x@1', '|', 'x@2', 'y@1', 'y@2']);
    expect(describeEvents((await secondEvents).events)).toEqual(['x@2', 'y@1', '|', 'y@2']);
    expect(describeEvents((await thirdEvents).events)).toEqual(['x@2', 'y@1', '|']);
  });

  it('opened while writes race it, holds every config gap-free from its first event on', async () => {
    const userId = freshUser();
    const names = ['p', 'q', 'r'];
    for (const configName of names) await client.put({ userId, configName, values: { n: 0 } });
    let writing = true;
    const writers = names.map(async (configName) => {
      for (let n = 1; writing; n++) await client.put({ userId, configName, values: { n } });
    });
    const streams = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 15));
        return client.watch({ userId });
      }),
    );
    const results = streams.map((stream) => collect(stream, () => false));
    await new Promise((resolve) => setTimeout(resolve, 300));
    writing = false;
    await Promise.all(writers);
    const finals = new Map<string, number>();
    for (const configName of names) finals.set(configName, (await client.get({ userId, configName })).config!.version);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const stream of streams) stream.cancel();
    for (const { events } of await Promise.all(results)) {
      expect(events.filter((e) => e.type === MARKER)).toHaveLength(1);
      for (const configName of names) {
        const versions = events.filter((e) => e.config?.configName === configName).map((e) => e.config!.version);
        const first = versions[0]!;
        expect(versions).toEqual(Array.from({ length: finals.get(configName)! - first + 1 }, (_, i) => first + i));
      }
    }
  });

  it('over SSE: the same events, with known_versions as query parameters', async () => {
    const userId = freshUser();
    await client.put({ userId, configName: 'a', values: { a: 1 } });
    await client.put({ userId, configName: 'a', values: { a: 2 } });
    await client.put({ userId, configName: 'b', values: { b: 1 } });
    const { client: sse, res } = await SseClient.open(
      server.cfgd.httpPort,
      `/v1/users/${userId}/configs:watch?known_versions[a]=1`,
    );
    expect(res.statusCode).toBe(200);
    await sse.until((c) => c.messages().some((m) => m.type === 'WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE'));
    await client.put({ userId, configName: 'c', values: { c: 1 } });
    await sse.until((c) => c.messages().length === 4);
    const seen = sse
      .messages()
      .map((m) =>
        m.type === 'WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE' ? '|' : `${m.config.config_name}@${m.config.version}`,
      );
    expect(seen.slice(0, 3).sort()).toEqual(['a@2', 'b@1', '|'].sort());
    expect(seen.slice(2)).toEqual(['|', 'c@1']);
    // A user stream has no single version to resume from, so its events carry no id.
    expect(sse.events.every((e) => e.id === undefined)).toBe(true);
    sse.close();

    const bad = await SseClient.open(server.cfgd.httpPort, `/v1/users/${userId}/configs:watch?known_versions[a]=x`);
    expect(bad.res.statusCode).toBe(400);
    bad.client.close();
  });
});
