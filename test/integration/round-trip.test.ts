import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeAction,
  WatchEventType,
  type Change as ChangeMessage,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { apply, jsonEqual, type Change, type JsonObject, type JsonValue } from '../../src/domain/index.js';
import { collect, type TestClient } from '../helpers/client.js';
import { http, sendJson, type HttpResponse } from '../helpers/http.js';
import { abbreviate, oddJsonObject, ODD_KEYS, ownJson, VERY_LONG_KEY } from '../helpers/odd-json.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';

/**
 * Any JSON object key is a config key: what a client Puts, it Gets back,
 * own keys exactly (`__proto__`, `constructor`, `""`, very long ones …), on
 * gRPC, on /v1 REST and on legacy /values; and History's changes, applied in
 * order from {}, rebuild every version. Replay a failure with
 * CFGD_ROUND_TRIP_SEED=<seed> (fast-check prints it with the counterexample).
 */
const SEED = Number(process.env.CFGD_ROUND_TRIP_SEED ?? 0x0c0ffee);
const RUNS = Number(process.env.CFGD_ROUND_TRIP_RUNS ?? 40);

let server: TestServer;
let client: TestClient;
let port: number;
let users = 0;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const freshUser = (): string => `rt${++users}-${Date.now()}`;

/** Config names that are also Object.prototype's keys are legal names (1–128 of `A–Z a–z 0–9 . _ -`). */
const configName = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'app');

/** `actual` has exactly the own keys and values of `expected` (key order included when `ordered`). */
function expectSameJson(actual: unknown, expected: JsonValue, where: string, ordered = true): void {
  expect(abbreviate(ownJson(actual, !ordered)), where).toBe(abbreviate(ownJson(expected, !ordered)));
}

/** The versions a sequence of Puts creates: a Put equal to the current values creates none. */
function expectedVersions(puts: readonly JsonObject[]): JsonObject[] {
  const versions: JsonObject[] = [];
  for (const values of puts) {
    const current = versions.at(-1);
    if (current === undefined || !jsonEqual(current, values)) versions.push(values);
  }
  return versions;
}

/** Applies each version's changes in order from {}; the values of every version. */
function replay(history: readonly (readonly Change[])[]): JsonObject[] {
  const states: JsonObject[] = [];
  let state: JsonObject = {};
  for (const changes of history) states.push((state = apply(changes, state)));
  return states;
}

function ok(response: HttpResponse, what: string): HttpResponse {
  if (response.status !== 200)
    throw new Error(`${what}: HTTP ${response.status} ${abbreviate(response.text).slice(0, 500)}`);
  return response;
}

const GRPC_ACTIONS = {
  [ChangeAction.CHANGE_ACTION_ADDED]: 'added',
  [ChangeAction.CHANGE_ACTION_UPDATED]: 'updated',
  [ChangeAction.CHANGE_ACTION_REMOVED]: 'removed',
} as Record<number, Change['action']>;

function fromGrpcChange(change: ChangeMessage): Change {
  return domainChange(GRPC_ACTIONS[change.action], change.key, change.value, change.oldValue);
}

/** A change as proto3 JSON (`CHANGE_ACTION_ADDED`, `old_value`) or as the legacy document writes it. */
function fromJsonChange(change: { action: string; key: string; value: JsonValue; old_value?: JsonValue }): Change {
  const action = change.action.replace(/^CHANGE_ACTION_/, '').toLowerCase() as Change['action'];
  return domainChange(action, change.key, change.value, change.old_value);
}

function domainChange(action: Change['action'] | undefined, key: string, value: unknown, oldValue: unknown): Change {
  if (action === 'updated') return { action, key, value: value as JsonValue, oldValue: oldValue as JsonValue };
  if (action === 'added' || action === 'removed') return { action, key, value: value as JsonValue };
  throw new Error(`unknown change action ${String(action)}`);
}

interface Transport {
  /** Puts the values; resolves with the values the response carries. */
  put(userId: string, name: string, values: JsonObject): Promise<unknown>;
  get(userId: string, name: string): Promise<unknown>;
  /** Every version's changes, in version order. */
  history(userId: string, name: string): Promise<Change[][]>;
}

const path = (userId: string, name: string): string =>
  `/users/${encodeURIComponent(userId)}/configs/${encodeURIComponent(name)}`;

const TRANSPORTS: Record<string, () => Transport> = {
  gRPC: () => ({
    put: async (userId, name, values) => (await client.put({ userId, configName: name, values })).config?.values,
    get: async (userId, name) => (await client.get({ userId, configName: name })).config?.values,
    history: async (userId, name) =>
      (await client.history({ userId, configName: name, pageSize: 1000 })).entries.map((entry) =>
        entry.changes.map(fromGrpcChange),
      ),
  }),
  '/v1 REST': () => ({
    // Put is `put: "/v1/users/{user_id}/configs/{config_name}"` with `body: "values"`.
    put: async (userId, name, values) =>
      ok(await sendJson(port, 'PUT', `/v1${path(userId, name)}`, values), 'PUT').json.config.values,
    get: async (userId, name) => ok(await http(port, 'GET', `/v1${path(userId, name)}`), 'GET').json.config.values,
    history: async (userId, name) =>
      (
        ok(await http(port, 'GET', `/v1${path(userId, name)}/history?page_size=1000`), 'GET history').json.entries as {
          changes: Parameters<typeof fromJsonChange>[0][];
        }[]
      ).map((entry) => entry.changes.map(fromJsonChange)),
  }),
  'legacy /values': () => ({
    put: async (userId, name, values) =>
      ok(await sendJson(port, 'POST', `/values/${userId}/${name}`, values), 'POST').json.values,
    get: async (userId, name) => ok(await http(port, 'GET', `/values/${userId}/${name}`), 'GET').json.values,
    history: async (userId, name) =>
      (
        ok(await http(port, 'GET', `/values/${userId}/${name}`), 'GET').json.audit_trail as {
          changes: Parameters<typeof fromJsonChange>[0][];
        }[]
      ).map((entry) => entry.changes.map(fromJsonChange)),
  }),
};

describe('round trip of values with any keys', () => {
  for (const [writerName, writer] of Object.entries(TRANSPORTS)) {
    it(`written on ${writerName}: Put answers the values; Get, and History's changes applied, give them back on every transport`, async () => {
      const { put } = writer();
      await fc.assert(
        fc.asyncProperty(configName, fc.array(oddJsonObject, { minLength: 1, maxLength: 3 }), async (name, puts) => {
          const userId = freshUser();
          const versions = expectedVersions(puts);
          let current = 0;
          for (const [i, values] of puts.entries()) {
            if (current < versions.length && values === versions[current]) current++;
            // An unchanged Put answers the current values.
            expectSameJson(await put(userId, name, values), versions[current - 1]!, `Put #${i + 1} response`);
          }
          for (const [readerName, reader] of Object.entries(TRANSPORTS)) {
            const { get, history } = reader();
            expectSameJson(await get(userId, name), versions.at(-1)!, `Get on ${readerName}`);
            const states = replay(await history(userId, name));
            expect(states.length, `History on ${readerName}: one entry per version`).toBe(versions.length);
            // Applying changes keeps the order of the previous version's keys, so compare as JSON objects: by key set.
            states.forEach((state, i) =>
              expectSameJson(state, versions[i]!, `History on ${readerName} applied up to version ${i + 1}`, false),
            );
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  }

  it('keeps every odd key side by side in one object, nested and at the top, on every transport', async () => {
    const nested = Object.fromEntries(ODD_KEYS.map((key, i) => [key, i]));
    const values: JsonObject = Object.fromEntries<JsonValue>([
      ...ODD_KEYS.map((key): [string, JsonValue] => [key, nested]),
      [VERY_LONG_KEY, { x: [nested] }],
    ]);
    expect(Object.getOwnPropertyNames(values)).toContain('__proto__');
    for (const [transportName, transport] of Object.entries(TRANSPORTS)) {
      const userId = freshUser();
      const { put, get, history } = transport();
      expectSameJson(await put(userId, '__proto__', values), values, `${transportName} Put`);
      expectSameJson(await get(userId, '__proto__'), values, `${transportName} Get`);
      expectSameJson(replay(await history(userId, '__proto__'))[0], values, `${transportName} History`, false);
    }
  });

  it('answers the example from issue 10 alike on every path', async () => {
    const values = JSON.parse('{"__proto__":{"x":1},"b":2}') as JsonObject;
    for (const [transportName, transport] of Object.entries(TRANSPORTS)) {
      const userId = freshUser();
      const { put, get } = transport();
      await put(userId, 'app', values);
      expect(JSON.stringify(await get(userId, 'app')), transportName).toBe('{"__proto__":{"x":1},"b":2}');
      // And across transports: written on one, read on each of the others.
      for (const [otherName, other] of Object.entries(TRANSPORTS)) {
        expect(JSON.stringify(await other().get(userId, 'app')), `${transportName} → ${otherName}`).toBe(
          '{"__proto__":{"x":1},"b":2}',
        );
      }
    }
  });
});

describe('watch delivers values with any keys', () => {
  const isVersion = (e: WatchResponse): boolean => e.type === WatchEventType.WATCH_EVENT_TYPE_VERSION;

  it('on gRPC and SSE, replayed and live, each version with its values and its changes', async () => {
    const userId = freshUser();
    const name = '__proto__';
    const puts = expectedVersions([
      JSON.parse('{"__proto__":{"x":1},"b":2}') as JsonObject,
      ...fc.sample(fc.array(oddJsonObject, { minLength: 6, maxLength: 6 }), { seed: SEED, numRuns: 1 })[0]!,
    ]);
    const half = Math.ceil(puts.length / 2);
    for (const values of puts.slice(0, half)) await client.put({ userId, configName: name, values });

    const grpc = collect(client.watch({ userId, configName: name, startVersion: 0 }), (events) =>
      events.some((e) => e.config?.version === puts.length),
    );
    const { client: sse } = await SseClient.open(port, `/v1${path(userId, name)}:watch?start_version=0`);
    try {
      for (const values of puts.slice(half)) await client.put({ userId, configName: name, values });
      await sse.until((c) => c.messages().length >= puts.length);

      const grpcEvents = (await grpc).events.filter(isVersion);
      expect(grpcEvents.map((e) => e.config?.version)).toEqual(puts.map((_, i) => i + 1));
      grpcEvents.forEach((e, i) => expectSameJson(e.config?.values, puts[i]!, `gRPC watch version ${i + 1}`));
      const grpcStates = replay(grpcEvents.map((e) => e.auditEntry!.changes.map(fromGrpcChange)));
      grpcStates.forEach((state, i) => expectSameJson(state, puts[i]!, `gRPC watch changes up to ${i + 1}`, false));

      const sseEvents = sse.messages() as {
        config: { version: string; values: unknown };
        audit_entry: { changes: Parameters<typeof fromJsonChange>[0][] };
      }[];
      expect(sseEvents.map((e) => Number(e.config.version))).toEqual(puts.map((_, i) => i + 1));
      sseEvents.forEach((e, i) => expectSameJson(e.config.values, puts[i]!, `SSE watch version ${i + 1}`));
      const sseStates = replay(sseEvents.map((e) => e.audit_entry.changes.map(fromJsonChange)));
      sseStates.forEach((state, i) => expectSameJson(state, puts[i]!, `SSE watch changes up to ${i + 1}`, false));
    } finally {
      sse.close();
    }
  });

  /** Configs `__proto__` (v1..3), `constructor` (v1..2) and `app` (v1); the client knows `__proto__`@1, `constructor`@2. */
  async function userWithOddConfigNames(): Promise<string> {
    const userId = freshUser();
    for (const [name, count] of [
      ['__proto__', 3],
      ['constructor', 2],
      ['app', 1],
    ] as const) {
      for (let i = 1; i <= count; i++) await client.put({ userId, configName: name, values: { i } });
    }
    return userId;
  }
  const RESUMED = ['__proto__@2', '__proto__@3', 'app@1', '|'];
  const sorted = (events: string[]): string[] => [...events.slice(0, -1)].sort().concat(events.slice(-1));

  it('a user watch on gRPC resumes a config named __proto__ from known_versions', async () => {
    const userId = await userWithOddConfigNames();
    // JSON.parse defines "__proto__" as an own key; an object literal would set the prototype instead.
    const knownVersions = JSON.parse('{"__proto__": 1, "constructor": 2}') as Record<string, number>;
    const { events } = await collect(
      client.watch({ userId, knownVersions }),
      (e) => e.at(-1)?.type === WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE,
    );
    const seen = events.map((e) => (isVersion(e) ? `${e.config!.configName}@${e.config!.version}` : '|'));
    expect(sorted(seen)).toEqual(RESUMED);
  });

  // The gateway must store `field[key]=value` query entries as own properties: plain `map[key] = …`
  // runs the __proto__ setter, `known_versions[__proto__]` is dropped and the config restarts from
  // its current version.
  it('a user watch on SSE resumes a config named __proto__ from known_versions[__proto__]', async () => {
    const userId = await userWithOddConfigNames();
    const { client: sse } = await SseClient.open(
      port,
      `/v1/users/${userId}/configs:watch?known_versions[__proto__]=1&known_versions[constructor]=2`,
    );
    try {
      await sse.until((c) => c.messages().at(-1)?.type === 'WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE');
      const seen = (sse.messages() as { type: string; config?: { config_name: string; version: string } }[]).map((m) =>
        m.type === 'WATCH_EVENT_TYPE_VERSION' ? `${m.config!.config_name}@${m.config!.version}` : '|',
      );
      expect(sorted(seen)).toEqual(RESUMED);
    } finally {
      sse.close();
    }
  });
});
