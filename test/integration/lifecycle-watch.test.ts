/**
 * What watchers see of the config lifecycle: a Delete arrives as a DELETED
 * event (the tombstone: `deleted`, no values, its audit entry removing every
 * key), and whatever revives the config (Put, Undelete, Rollback) as a
 * VERSION event; Patch and Rollback are VERSION events with their own
 * operation. Over gRPC and Server-Sent Events, live and replayed, for a
 * config watch and a user watch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeAction,
  Operation,
  WatchEventType,
  type DeleteRequest,
  type DeleteResponse,
  type PatchRequest,
  type PatchResponse,
  type RollbackRequest,
  type RollbackResponse,
  type UndeleteRequest,
  type UndeleteResponse,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { unary } from '../helpers/auth.js';
import { collect, opened, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import { grpcRefusal } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';

interface Key {
  readonly userId: string;
  readonly configName: string;
}

let server: TestServer;
let client: TestClient;
let port: number;
let n = 0;
const fresh = (userId = 'lifecycle-watch'): Key => ({ userId, configName: `cfg-${++n}` });
const v1 = (key: Key): string => `/v1/users/${key.userId}/configs/${key.configName}`;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const patch = (request: Key & Partial<PatchRequest>) =>
  unary<PatchRequest, PatchResponse>(
    client.raw.patch.bind(client.raw),
    { patch: undefined, validateOnly: false, ...request },
    undefined,
  );
const rollback = (request: Key & Partial<RollbackRequest>) =>
  unary<RollbackRequest, RollbackResponse>(
    client.raw.rollback.bind(client.raw),
    { toVersion: 0, validateOnly: false, ...request },
    undefined,
  );
const del = (request: Key & Partial<DeleteRequest>) =>
  unary<DeleteRequest, DeleteResponse>(
    client.raw.delete.bind(client.raw),
    { validateOnly: false, ...request },
    undefined,
  );
const undelete = (request: Key & Partial<UndeleteRequest>) =>
  unary<UndeleteRequest, UndeleteResponse>(
    client.raw.undelete.bind(client.raw),
    { validateOnly: false, ...request },
    undefined,
  );

const {
  WATCH_EVENT_TYPE_VERSION: VERSION,
  WATCH_EVENT_TYPE_DELETED: DELETED,
  WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE: COMPLETE,
} = WatchEventType;
const { OPERATION_PUT: PUT, OPERATION_PATCH: PATCH, OPERATION_ROLLBACK: ROLLBACK } = Operation;
const { OPERATION_DELETE: DELETE, OPERATION_UNDELETE: UNDELETE } = Operation;

/**
 * The lifecycle every test watches, after a first Put (version 1): a patch (2),
 * a delete (3), a no-op delete and a refused patch (no version), a Put that
 * revives it (4), a delete (5), an undelete (6), a rollback to version 2 (7).
 */
async function lifecycle(key: Key): Promise<void> {
  await patch({ ...key, patch: { b: { c: 2 } } });
  await del(key);
  expect((await del(key)).changed).toBe(false);
  expect(grpcRefusal(await rejection(patch({ ...key, patch: { a: 9 } }))).reason).toBe('CONFIG_DELETED');
  await client.put({ ...key, values: { z: 1 } });
  await del(key);
  await undelete(key);
  await rollback({ ...key, toVersion: 2 });
}

const FIRST = { a: 1, b: { c: 1 } };
const PATCHED = { a: 1, b: { c: 2 } };

/** (type, version, operation, rollback_to_version, deleted, values) of each event. */
const summary = (events: WatchResponse[]) =>
  events.map((e) => [
    e.type,
    e.config?.version,
    e.auditEntry?.operation,
    e.auditEntry?.rollbackToVersion,
    e.config?.deleted,
    e.config?.values,
  ]);

const EXPECTED = [
  [VERSION, 1, PUT, 0, false, FIRST],
  [VERSION, 2, PATCH, 0, false, PATCHED],
  [DELETED, 3, DELETE, 0, true, undefined],
  [VERSION, 4, PUT, 0, false, { z: 1 }],
  [DELETED, 5, DELETE, 0, true, undefined],
  [VERSION, 6, UNDELETE, 0, false, { z: 1 }],
  [VERSION, 7, ROLLBACK, 2, false, PATCHED],
];

describe('gRPC Watch of a config', () => {
  it('sees the deletion as DELETED, with the removed keys, then each revival as VERSION', async () => {
    const key = fresh();
    await client.put({ ...key, values: FIRST });
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === EXPECTED.length);
    await opened(stream);
    await lifecycle(key);
    const { events, error } = await result;
    expect(error).toBeUndefined();
    expect(summary(events)).toEqual(EXPECTED);
    const deleted = events[2]!;
    expect(deleted.config).toMatchObject({
      name: `users/${key.userId}/configs/${key.configName}`,
      userId: key.userId,
      configName: key.configName,
      version: 3,
      deleted: true,
    });
    expect(deleted.config?.values).toBeUndefined();
    expect(deleted.auditEntry).toMatchObject({
      version: 3,
      author: 'anonymous',
      changes: [
        { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'a', value: 1 },
        { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'b', value: { c: 2 } },
      ],
    });
    // The revival adds every key (from no values), the undelete too.
    expect(events[3]?.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'z', value: 1, oldValue: undefined },
    ]);
    expect(events[5]?.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'z', value: 1, oldValue: undefined },
    ]);
  });

  it('replays the same from start_version 0, and from after the deletion', async () => {
    const key = fresh();
    await client.put({ ...key, values: FIRST });
    await lifecycle(key);
    const all = await collect(client.watch({ ...key, startVersion: 0 }), (e) => e.length === EXPECTED.length);
    expect(summary(all.events)).toEqual(EXPECTED);
    const after = await collect(client.watch({ ...key, startVersion: 3 }), (e) => e.length === 4);
    expect(summary(after.events)).toEqual(EXPECTED.slice(3));
  });

  it('opened on a deleted config, starts with its tombstone, then sees the revival', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    await del(key);
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === 2);
    await opened(stream);
    await undelete(key);
    expect(summary((await result).events)).toEqual([
      [DELETED, 2, DELETE, 0, true, undefined],
      [VERSION, 3, UNDELETE, 0, false, { a: 1 }],
    ]);
  });
});

describe('gRPC Watch of a user', () => {
  it('has a deleted config as DELETED in its initial state, then the live deletions and revivals', async () => {
    const userId = `lifecycle-user-${++n}`;
    const live = fresh(userId);
    const gone = fresh(userId);
    await client.put({ ...live, values: { a: 1 } });
    await client.put({ ...gone, values: { b: 1 } });
    await del(gone);
    const stream = client.watch({ userId, configName: '' });
    const result = collect(stream, (events) => events.length === 6);
    await opened(stream);
    await del(live);
    await undelete(gone);
    await client.put({ ...live, values: { a: 2 } });
    const { events, error } = await result;
    expect(error).toBeUndefined();
    const byType = events.map((e) => [e.type, e.config?.configName, e.config?.version, e.config?.deleted]);
    // The initial state in either order, then what happened after.
    expect(byType.slice(0, 2)).toEqual(
      expect.arrayContaining([
        [VERSION, live.configName, 1, false],
        [DELETED, gone.configName, 2, true],
      ]),
    );
    expect(byType[2]).toEqual([COMPLETE, undefined, undefined, undefined]);
    // After it, each config's events in order (two configs' events may interleave either way).
    const of = (name: string) => byType.slice(3).filter((e) => e[1] === name);
    expect(byType.slice(3)).toHaveLength(3);
    expect(of(live.configName)).toEqual([
      [DELETED, live.configName, 2, true],
      [VERSION, live.configName, 3, false],
    ]);
    expect(of(gone.configName)).toEqual([[VERSION, gone.configName, 3, false]]);
  });
});

describe('SSE watch', () => {
  it('shows the same: WATCH_EVENT_TYPE_DELETED without values, ids = versions; resumes after the deletion', async () => {
    const key = fresh();
    await client.put({ ...key, values: FIRST });
    const { client: sse, res } = await SseClient.open(port, `${v1(key)}:watch`);
    expect(res.statusCode).toBe(200);
    try {
      // Written over REST this time.
      await sendJson(port, 'PATCH', v1(key), { b: { c: 2 } });
      expect((await http(port, 'DELETE', v1(key))).status).toBe(200);
      expect((await http(port, 'DELETE', v1(key))).json.changed).toBe(false);
      await sendJson(port, 'PUT', v1(key), { z: 1 });
      await http(port, 'DELETE', v1(key));
      await sendJson(port, 'POST', `${v1(key)}:undelete`, {});
      await sendJson(port, 'POST', `${v1(key)}:rollback`, { to_version: '2' });
      await sse.until((c) => c.messages().length === EXPECTED.length);
    } finally {
      sse.close();
    }
    const raw = sse.events.filter((e) => e.event === 'message');
    expect(raw.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    const messages = sse.messages();
    expect(
      messages.map((m) => [
        m.type,
        m.config.version,
        m.audit_entry.operation,
        m.audit_entry.rollback_to_version,
        m.config.deleted,
        m.config.values,
      ]),
    ).toEqual([
      ['WATCH_EVENT_TYPE_VERSION', '1', 'OPERATION_PUT', '0', false, FIRST],
      ['WATCH_EVENT_TYPE_VERSION', '2', 'OPERATION_PATCH', '0', false, PATCHED],
      ['WATCH_EVENT_TYPE_DELETED', '3', 'OPERATION_DELETE', '0', true, undefined],
      ['WATCH_EVENT_TYPE_VERSION', '4', 'OPERATION_PUT', '0', false, { z: 1 }],
      ['WATCH_EVENT_TYPE_DELETED', '5', 'OPERATION_DELETE', '0', true, undefined],
      ['WATCH_EVENT_TYPE_VERSION', '6', 'OPERATION_UNDELETE', '0', false, { z: 1 }],
      ['WATCH_EVENT_TYPE_VERSION', '7', 'OPERATION_ROLLBACK', '2', false, PATCHED],
    ]);
    expect('values' in messages[2].config).toBe(false);
    expect(messages[2].audit_entry.changes).toEqual([
      { action: 'CHANGE_ACTION_REMOVED', key: 'a', value: 1 },
      { action: 'CHANGE_ACTION_REMOVED', key: 'b', value: { c: 2 } },
    ]);

    // Resumed after the first deletion: the revival and what followed.
    const { client: resumed } = await SseClient.open(port, `${v1(key)}:watch`, { 'last-event-id': '3' });
    try {
      await resumed.until((c) => c.messages().length === 4);
    } finally {
      resumed.close();
    }
    expect(resumed.messages().map((m) => [m.type, m.config.version])).toEqual([
      ['WATCH_EVENT_TYPE_VERSION', '4'],
      ['WATCH_EVENT_TYPE_DELETED', '5'],
      ['WATCH_EVENT_TYPE_VERSION', '6'],
      ['WATCH_EVENT_TYPE_VERSION', '7'],
    ]);
  });
});
