/**
 * What watchers see of schema changes: a schema set before a config's first
 * values arrives as a SCHEMA event (a version without values); a schema
 * change of a config with values is a VERSION event whose audit entry says
 * SET_SCHEMA. Over gRPC and Server-Sent Events, live and replayed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Operation, WatchEventType, type WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { collect, opened, rejection, type TestClient } from '../helpers/client.js';
import { sendJson } from '../helpers/http.js';
import { grpcRefusal, setSchema } from '../helpers/schemas.js';
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
const fresh = (userId = 'schema-watch'): Key => ({ userId, configName: `cfg-${++n}` });
const v1 = (key: Key): string => `/v1/users/${key.userId}/configs/${key.configName}`;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const { WATCH_EVENT_TYPE_VERSION: VERSION, WATCH_EVENT_TYPE_SCHEMA: SCHEMA } = WatchEventType;
const { OPERATION_PUT: PUT, OPERATION_SET_SCHEMA: SET_SCHEMA } = Operation;

const portSchema = { type: 'object', properties: { port: { type: 'integer' } }, required: ['port'] };
const looserSchema = { type: 'object', properties: { port: { type: 'integer' } } };

/**
 * The writes every watch test watches: a schema before any values (1), the first
 * values (2), a refused write (no version), a schema change (3), more values (4).
 */
async function writeSequence(key: Key): Promise<void> {
  await setSchema(client, { ...key, schema: portSchema });
  await client.put({ ...key, values: { port: 80 } });
  expect(grpcRefusal(await rejection(client.put({ ...key, values: { port: 'x' } }))).reason).toBe('SCHEMA_VIOLATION');
  await setSchema(client, { ...key, schema: looserSchema });
  await client.put({ ...key, values: { port: 81, name: 'web' } });
}

/** The (type, version, operation, schema version, values) of each event. */
const summary = (events: WatchResponse[]) =>
  events.map((e) => [
    e.type,
    e.config?.version,
    e.auditEntry?.operation,
    e.auditEntry?.schemaVersion,
    e.config?.schemaVersion,
    e.config?.values,
  ]);

const EXPECTED = [
  [SCHEMA, 1, SET_SCHEMA, 1, 1, undefined],
  [VERSION, 2, PUT, 1, 1, { port: 80 }],
  [VERSION, 3, SET_SCHEMA, 2, 2, { port: 80 }],
  [VERSION, 4, PUT, 2, 2, { port: 81, name: 'web' }],
];

describe('gRPC Watch', () => {
  it('sees a schema set before the values as SCHEMA, then VERSION events, a schema change among them', async () => {
    const key = fresh();
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === 4);
    await opened(stream);
    await writeSequence(key);
    const { events, error } = await result;
    expect(error).toBeUndefined();
    expect(summary(events)).toEqual(EXPECTED);
    const [schemaEvent, , schemaChange] = events;
    // The valueless version: a config without values, and its audit entry.
    expect(schemaEvent?.config).toMatchObject({ name: `users/${key.userId}/configs/${key.configName}`, version: 1 });
    expect(schemaEvent?.config?.values).toBeUndefined();
    expect(schemaEvent?.auditEntry).toMatchObject({ version: 1, author: 'anonymous', changes: [] });
    // A schema change of a config with values carries them on, unchanged.
    expect(schemaChange?.auditEntry?.changes).toEqual([]);
  });

  it('replays the same from start_version 0, and from the valueless version on', async () => {
    const key = fresh();
    await writeSequence(key);
    const all = await collect(client.watch({ ...key, startVersion: 0 }), (events) => events.length === 4);
    expect(summary(all.events)).toEqual(EXPECTED);
    const after = await collect(client.watch({ ...key, startVersion: 1 }), (events) => events.length === 3);
    expect(summary(after.events)).toEqual(EXPECTED.slice(1));
  });

  it('starts a watch of a config that has only a schema with that SCHEMA event', async () => {
    const key = fresh();
    await setSchema(client, { ...key, schema: portSchema });
    const stream = client.watch(key);
    const result = collect(stream, (events) => events.length === 2);
    await opened(stream);
    await client.put({ ...key, values: { port: 1 } });
    expect(summary((await result).events)).toEqual([
      [SCHEMA, 1, SET_SCHEMA, 1, 1, undefined],
      [VERSION, 2, PUT, 1, 1, { port: 1 }],
    ]);
  });

  it('a user watch shows a config that has only a schema as SCHEMA in its initial state', async () => {
    const userId = `schema-user-${++n}`;
    const withSchema = fresh(userId);
    const withValues = fresh(userId);
    await setSchema(client, { ...withSchema, schema: portSchema });
    await client.put({ ...withValues, values: { a: 1 } });
    const stream = client.watch({ userId, configName: '' });
    const result = collect(stream, (events) => events.length === 4);
    await opened(stream);
    await client.put({ ...withSchema, values: { port: 2 } });
    const { events } = await result;
    const byType = events.map((e) => [e.type, e.config?.configName, e.config?.version]);
    expect(byType.slice(0, 2)).toEqual(
      expect.arrayContaining([
        [SCHEMA, withSchema.configName, 1],
        [VERSION, withValues.configName, 1],
      ]),
    );
    expect(byType.slice(2)).toEqual([
      [WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE, undefined, undefined],
      [VERSION, withSchema.configName, 2],
    ]);
  });
});

describe('SSE watch', () => {
  it('shows the same: WATCH_EVENT_TYPE_SCHEMA without values, then versions, ids = versions', async () => {
    const key = fresh();
    const { client: sse, res } = await SseClient.open(port, `${v1(key)}:watch`);
    expect(res.statusCode).toBe(200);
    try {
      // Written over REST this time.
      await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: portSchema });
      await sendJson(port, 'PUT', v1(key), { port: 80 });
      expect((await sendJson(port, 'PUT', v1(key), { port: 'x' })).status).toBe(400);
      await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: looserSchema });
      await sendJson(port, 'PUT', v1(key), { port: 81, name: 'web' });
      await sse.until((c) => c.messages().length === 4);
    } finally {
      sse.close();
    }
    const raw = sse.events.filter((e) => e.event === 'message');
    expect(raw[0]?.data).toContain('"type":"WATCH_EVENT_TYPE_SCHEMA"');
    expect(raw.map((e) => e.id)).toEqual(['1', '2', '3', '4']);
    const messages = sse.messages();
    expect(
      messages.map((m) => [
        m.type,
        m.config.version,
        m.audit_entry.operation,
        m.audit_entry.schema_version,
        m.config.schema_version,
        m.config.values,
      ]),
    ).toEqual([
      ['WATCH_EVENT_TYPE_SCHEMA', '1', 'OPERATION_SET_SCHEMA', '1', '1', undefined],
      ['WATCH_EVENT_TYPE_VERSION', '2', 'OPERATION_PUT', '1', '1', { port: 80 }],
      ['WATCH_EVENT_TYPE_VERSION', '3', 'OPERATION_SET_SCHEMA', '2', '2', { port: 80 }],
      ['WATCH_EVENT_TYPE_VERSION', '4', 'OPERATION_PUT', '2', '2', { port: 81, name: 'web' }],
    ]);
    expect('values' in messages[0].config).toBe(false);
  });

  it('resumes after the SCHEMA event with Last-Event-ID', async () => {
    const key = fresh();
    await writeSequence(key);
    const { client: sse } = await SseClient.open(port, `${v1(key)}:watch`, { 'last-event-id': '1' });
    try {
      await sse.until((c) => c.messages().length === 3);
    } finally {
      sse.close();
    }
    expect(sse.messages().map((m) => [m.type, m.config.version])).toEqual([
      ['WATCH_EVENT_TYPE_VERSION', '2'],
      ['WATCH_EVENT_TYPE_VERSION', '3'],
      ['WATCH_EVENT_TYPE_VERSION', '4'],
    ]);
  });
});
