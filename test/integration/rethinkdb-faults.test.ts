import { status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigApp } from '../../src/app/config-app.js';
import { WatchHub } from '../../src/app/watch-hub.js';
import { allowAll, ANONYMOUS } from '../../src/app/context.js';
import { SchemaChecks } from '../../src/app/schemas/schema-checks.js';
import { SchemaCompiler } from '../../src/schema/json-schema.js';
import { CfgdError, DEFAULT_VALUE_LIMITS, type ConfigVersion } from '../../src/domain/index.js';
import { RethinkDbStore, type WriteStep } from '../../src/store/rethinkdb/rethinkdb-store.js';
import { collect, opened, rejection } from '../helpers/client.js';
import { TcpProxy } from '../helpers/proxy.js';
import { eventually } from '../helpers/wait.js';
import { WatchEventType } from '../../generated/cfgd/v1/config_service.js';
import { freshDatabase, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { startTestServer } from '../helpers/server.js';

const log = pino({ level: 'silent' });
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function appOn(store: RethinkDbStore): ConfigApp {
  return new ConfigApp({
    store,
    watchHub: new WatchHub({ store, maxQueuedEvents: 1000, heartbeatMs: 0 }),
    authorizer: allowAll,
    schemaChecks: new SchemaChecks(new SchemaCompiler()),
    limits: DEFAULT_VALUE_LIMITS,
    clock: () => new Date(),
  });
}

async function failure(promise: Promise<unknown>): Promise<CfgdError> {
  try {
    await promise;
  } catch (error: unknown) {
    if (error instanceof CfgdError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('RethinkDB write path under faults', () => {
  const db = freshDatabase('faults');
  const steps: [WriteStep, boolean][] = [
    ['before-read', false],
    ['before-insert', false],
    ['after-insert', true],
    ['after-head', true],
  ];

  it.each(steps)(
    'a write that stops at %s leaves a consistent, gap-free sequence (committed: %s)',
    async (step, committed) => {
      let armed: WriteStep | undefined;
      const faulty = await RethinkDbStore.open(
        {
          ...rethinkStoreConfig(db),
          faults: (at) => {
            if (at === armed) {
              armed = undefined;
              throw new Error(`injected crash at ${at}`);
            }
          },
        },
        log,
      );
      const other = await RethinkDbStore.open(rethinkStoreConfig(db), log);
      const app = (store: RethinkDbStore) =>
        new ConfigApp({
          store,
          watchHub: new WatchHub({ store, maxQueuedEvents: 1000, heartbeatMs: 0 }),
          authorizer: allowAll,
          schemaChecks: new SchemaChecks(new SchemaCompiler()),
          limits: DEFAULT_VALUE_LIMITS,
          clock: () => new Date(),
        });
      const node = app(faulty);
      const otherNode = app(other);
      const controller = new AbortController();
      const ctx = { principal: ANONYMOUS, signal: controller.signal };
      const key = { userId: 'faults', configName: step };

      await node.put(ctx, { ...key, values: { v: 1 } });
      await node.put(ctx, { ...key, values: { v: 2 } });
      const watch = await otherNode.watch(ctx, { ...key, startVersion: 0 });
      const seen: ConfigVersion[] = [];
      const watching = (async () => {
        for await (const event of watch) {
          if (event.kind !== 'version') continue;
          seen.push(event.version);
          if (event.version.version === (committed ? 4 : 3)) break;
        }
      })();

      armed = step;
      await expect(node.put(ctx, { ...key, values: { v: 3 } })).rejects.toThrow(`injected crash at ${step}`);
      const expected = committed ? 3 : 2;
      for (const reader of [node, otherNode]) {
        const { config } = await reader.get(ctx, { ...key, version: 0 });
        expect(config.version).toBe(expected);
        expect(config.values).toEqual({ v: expected });
        const history = await reader.history(ctx, { ...key, startVersion: 0, pageSize: 10, pageToken: '' });
        expect(history.entries.map((e) => e.version)).toEqual(range(1, expected));
      }
      // The next write, on either node, continues the sequence.
      const next = await otherNode.put(ctx, { ...key, values: { v: 'next' } });
      expect(next.config.version).toBe(expected + 1);
      expect(next.config.audit.changes).toEqual([{ action: 'updated', key: 'v', value: 'next', oldValue: expected }]);
      await watching;
      expect(seen.map((v) => v.version)).toEqual(range(1, expected + 1));
      watch.close();
      controller.abort();
      await faulty.close();
      await other.close();
    },
  );
});

describe('RethinkDB connection loss', () => {
  it('fails fast with UNAVAILABLE during an outage, reconnects, and watchers get every version once', async () => {
    const database = rethinkStoreConfig(freshDatabase('outage'), 1000);
    const proxy = await TcpProxy.start(database.port, database.host);
    const server = await startTestServer({ store: { ...database, host: '127.0.0.1', port: proxy.port } });
    try {
      const client = server.client();
      const key = { userId: 'outage', configName: 'c' };
      await client.put({ ...key, values: { n: 0 } });
      const watchers = [0, 1, 2].map(() => client.watch({ ...key, startVersion: 0 }));
      const userWatch = client.watch({ userId: key.userId });
      await Promise.all([...watchers, userWatch].map(opened));
      let lastAcked = 1;
      let stop = false;
      let failures = 0;
      const writers = [0, 1].map(async (w) => {
        for (let j = 0; !stop; j++) {
          try {
            const res = await client.put({ ...key, values: { w, j } });
            lastAcked = Math.max(lastAcked, res.config!.version);
          } catch {
            failures++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      });
      while (lastAcked < 40) await new Promise((resolve) => setTimeout(resolve, 10));

      proxy.cut();
      for (const call of [() => client.put({ ...key, values: { during: 'outage' } }), () => client.get(key)]) {
        const started = performance.now();
        const error: ServiceError = await rejection(call());
        expect(error.code).toBe(status.UNAVAILABLE);
        expect(error.details).toMatch(/^the database is unavailable: /);
        // No hang: the configured query timeout (1 s) bounds the wait.
        expect(performance.now() - started).toBeLessThan(database.timeoutMs + 1000);
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const ackedBeforeRestore = lastAcked;
      proxy.restore();
      while (lastAcked < ackedBeforeRestore + 40) await new Promise((resolve) => setTimeout(resolve, 10));
      stop = true;
      await Promise.all(writers);
      expect(failures).toBeGreaterThan(0);

      const final = (await client.get(key)).config!.version;
      const results = await Promise.all(
        watchers.map((stream) => collect(stream, (events) => events.at(-1)?.config?.version === final)),
      );
      for (const { events, error } of results) {
        expect(error).toBeUndefined();
        expect(events.map((e) => e.config!.version)).toEqual(range(1, final));
      }
      // The user watch: the current version, the marker, then every later version once.
      const user = await collect(userWatch, (events) => events.at(-1)?.config?.version === final);
      expect(user.error).toBeUndefined();
      expect(user.events[1]?.type).toBe(WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE);
      expect(user.events.filter((e) => e.config !== undefined).map((e) => e.config!.version)).toEqual(range(1, final));
      expect(server.cfgd.store.stats().changefeeds).toBe(1);
      // Every stream is closed by its client: nothing stays subscribed.
      await eventually(() =>
        expect(server.cfgd.app.stats()).toMatchObject({ watches: 0, channels: 0, queuedEvents: 0 }),
      );
      expect(server.cfgd.store.stats().subscriptions).toBe(0);
    } finally {
      await server.stop();
      await proxy.stop();
    }
  }, 120_000);
});

describe('RethinkDB writes whose database stops answering', () => {
  const ctx = { principal: ANONYMOUS, signal: new AbortController().signal };

  it('a write answered UNAVAILABLE never runs later, even when queued behind another (no zombie writes)', async () => {
    const database = rethinkStoreConfig(freshDatabase('zombie'), 800);
    const proxy = await TcpProxy.start(database.port, database.host);
    const frozen = await RethinkDbStore.open({ ...database, host: '127.0.0.1', port: proxy.port }, log);
    const direct = await RethinkDbStore.open(database, log);
    try {
      const [nodeA, nodeB] = [appOn(frozen), appOn(direct)];
      const key = { userId: 'zombie', configName: 'c' };
      await nodeA.put(ctx, { ...key, values: { v: 1 } });
      // Node A's database connection stops delivering anything, as a frozen server would.
      proxy.freeze();
      const answers = await Promise.all([
        failure(nodeA.put(ctx, { ...key, values: { x: 1 } })),
        failure(nodeA.put(ctx, { ...key, values: { x: 2 } })),
      ]);
      for (const error of answers) {
        // Nothing was sent for either (the first never got past its read): a clean failure.
        expect(error.kind).toBe('unavailable');
        expect(error.reason).toBe('DATABASE_UNAVAILABLE');
      }
      const acknowledged = await nodeB.put(ctx, { ...key, values: { y: 1 } });
      expect(acknowledged.config.version).toBe(2);
      // Give a write that was answered but not cancelled every chance to run.
      await sleep(3 * database.timeoutMs);
      const history = await nodeB.history(ctx, { ...key, startVersion: 0, pageSize: 10, pageToken: '' });
      expect(history.entries.map((entry) => entry.version)).toEqual([1, 2]);
      expect((await nodeB.get(ctx, { ...key, version: 0 })).config.values).toEqual({ y: 1 });
    } finally {
      await frozen.close();
      await direct.close();
      await proxy.stop();
    }
  });

  it('an insert whose answer never comes is reported as "outcome unknown" with its version, never as a clean failure', async () => {
    const database = rethinkStoreConfig(freshDatabase('indeterminate'), 800);
    const proxy = await TcpProxy.start(database.port, database.host);
    let freezeAt: WriteStep | undefined;
    const frozen = await RethinkDbStore.open(
      {
        ...database,
        host: '127.0.0.1',
        port: proxy.port,
        faults: (step) => {
          if (step === freezeAt) {
            freezeAt = undefined;
            proxy.freeze();
          }
        },
      },
      log,
    );
    const direct = await RethinkDbStore.open(database, log);
    try {
      const [nodeA, nodeB] = [appOn(frozen), appOn(direct)];
      const key = { userId: 'indeterminate', configName: 'c' };
      await nodeA.put(ctx, { ...key, values: { v: 1 } });
      // The insert is sent into a connection that delivers nothing: its effect cannot be known.
      freezeAt = 'before-insert';
      const error = await failure(nodeA.put(ctx, { ...key, values: { v: 2 } }));
      expect(error.kind).toBe('unavailable');
      expect(error.reason).toBe('WRITE_OUTCOME_UNKNOWN');
      expect(error.metadata.version).toBe('2');
      expect(error.message).toMatch(/may or may not have been stored, as version 2 if at all/);
      await sleep(2 * database.timeoutMs);
      // Either stored as version 2 with its values, or not at all; never anywhere else, and writing goes on.
      const stored = await direct.version(key, 2);
      if (stored !== undefined) expect(stored.values).toEqual({ v: 2 });
      const next = await nodeB.put(ctx, { ...key, values: { v: 3 } });
      expect(next.config.version).toBe(stored === undefined ? 2 : 3);
      const history = await nodeB.history(ctx, { ...key, startVersion: 0, pageSize: 10, pageToken: '' });
      expect(history.entries.map((entry) => entry.version)).toEqual(range(1, next.config.version));
    } finally {
      await frozen.close();
      await direct.close();
      await proxy.stop();
    }
  });
});
