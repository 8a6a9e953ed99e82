/**
 * Schemas on the RethinkDB backend, where several nodes share one database:
 * a schema set through one node binds every node at once (no cached schema
 * lets a write through that the new one forbids, also while the two race),
 * and a schema change with migration values commits both or neither,
 * wherever the write stops.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigApp } from '../../src/app/config-app.js';
import { allowAll, ANONYMOUS } from '../../src/app/context.js';
import { SchemaApp } from '../../src/app/schemas/schema-app.js';
import { SchemaChecks } from '../../src/app/schemas/schema-checks.js';
import { WatchHub } from '../../src/app/watch-hub.js';
import { CfgdError, DEFAULT_VALUE_LIMITS } from '../../src/domain/index.js';
import { SchemaCompiler } from '../../src/schema/json-schema.js';
import { RethinkDbStore, type WriteStep } from '../../src/store/rethinkdb/rethinkdb-store.js';
import type { SetSchemaRequest, SetSchemaResponse } from '../../generated/cfgd/v1/config_service.js';
import { statusDetails, TestClient } from '../helpers/client.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { freshDatabase, rethinkStoreConfig, rethinkStoreUrl } from '../helpers/rethinkdb.js';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function setSchema(client: TestClient, request: Partial<SetSchemaRequest>): Promise<SetSchemaResponse> {
  return new Promise((resolve, reject) =>
    client.raw.setSchema(
      { userId: '', configName: '', schema: undefined, migrationValues: undefined, validateOnly: false, ...request },
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
}

/** Refuses values with a `bad` key. */
const NO_BAD = { type: 'object', not: { required: ['bad'] } };

describe('schemas across RethinkDB nodes', () => {
  it('a schema set through node A binds node B at once, also for writes racing the change', async () => {
    const db = freshDatabase('schemanodes');
    const nodes: CfgdProcess[] = await Promise.all([1, 2].map(() => spawnCfgd(['--store', rethinkStoreUrl(db)])));
    cleanups.push(async () => {
      for (const node of nodes) node.child.kill('SIGTERM');
      await Promise.all(nodes.map((node) => node.exited));
    });
    const [a, b] = nodes.map((node) => new TestClient(node.grpcPort)) as [TestClient, TestClient];
    const key = { userId: 'schema-nodes', configName: 'app' };

    // Node B checks writes against schema version 1 (and so holds it compiled).
    await setSchema(a, { ...key, schema: { type: 'object' } });
    expect((await b.put({ ...key, values: { bad: 0 } })).config?.schemaVersion).toBe(1);

    // Version 2, through node A, forbids what version 1 allowed; node B's very next write is held to it.
    await setSchema(a, { ...key, schema: NO_BAD, migrationValues: { good: 0 } });
    const refused = (await b.put({ ...key, values: { bad: 1 } }).catch((error: unknown) => error)) as ServiceError;
    expect(statusDetails(refused).errorInfo?.reason).toBe('SCHEMA_VIOLATION');
    expect((await b.get(key)).config?.values).toEqual({ good: 0 });

    // A race: schema version 3 allows `bad` again; 30 writes of it go through node B while node A
    // sets version 4, which forbids it: whatever commits satisfies the schema version it names.
    await setSchema(a, { ...key, schema: { type: 'object' } });
    const writes = Array.from({ length: 30 }, (_, i) => b.put({ ...key, values: { bad: i + 10 } }));
    const change = new Promise((resolve) => setTimeout(resolve, 20)).then(() =>
      setSchema(a, { ...key, schema: NO_BAD, migrationValues: { clean: true } }),
    );
    const outcomes = await Promise.allSettled([...writes, change]);
    expect(outcomes.at(-1)?.status).toBe('fulfilled');
    for (const outcome of outcomes.slice(0, -1)) {
      if (outcome.status === 'rejected') {
        expect(statusDetails(outcome.reason as ServiceError).errorInfo?.reason).toBe('SCHEMA_VIOLATION');
      }
    }
    const { latestVersion } = await a.get(key);
    for (let version = 1; version <= latestVersion; version++) {
      const { config } = await a.get({ ...key, version }).catch(() => ({ config: undefined }));
      if (config === undefined) continue;
      const forbidsBad = [2, 4].includes(config.schemaVersion);
      if (forbidsBad) expect(config.values, `version ${version}`).not.toHaveProperty('bad');
    }
    // After the change, no node lets `bad` in.
    for (const client of [a, b]) {
      const error = (await client.put({ ...key, values: { bad: 'late' } }).catch((e: unknown) => e)) as ServiceError;
      expect(statusDetails(error).errorInfo?.reason).toBe('SCHEMA_VIOLATION');
    }
    a.close();
    b.close();
  }, 120_000);
});

describe('a schema change with migration values under faults', () => {
  const db = freshDatabase('schemafaults');
  const steps: [WriteStep, boolean][] = [
    ['before-read', false],
    ['before-insert', false],
    ['after-insert', true],
    ['after-head', true],
  ];

  it.each(steps)(
    'stopping at %s commits the schema and the values together or neither (committed: %s)',
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
      const apps = (store: RethinkDbStore) => {
        const deps = {
          store,
          authorizer: allowAll,
          schemaChecks: new SchemaChecks(new SchemaCompiler()),
          limits: DEFAULT_VALUE_LIMITS,
          clock: () => new Date(),
        };
        return {
          config: new ConfigApp({ ...deps, watchHub: new WatchHub({ store, maxQueuedEvents: 100, heartbeatMs: 0 }) }),
          schemas: new SchemaApp(deps),
        };
      };
      const node = apps(faulty);
      const otherNode = apps(other);
      const ctx = { principal: ANONYMOUS, signal: new AbortController().signal };
      const key = { userId: 'schema-faults', configName: step };
      await node.config.put(ctx, { ...key, values: { port: 80 } });
      await node.schemas.setSchema(ctx, { ...key, schema: { type: 'object' } });

      armed = step;
      const strict = { type: 'object', properties: { port: { type: 'integer', maximum: 10 } } };
      await expect(
        node.schemas.setSchema(ctx, { ...key, schema: strict, migrationValues: { port: 8 } }),
      ).rejects.toThrow(`injected crash at ${step}`);

      for (const reader of [node, otherNode]) {
        const { config } = await reader.config.get(ctx, { ...key, version: 0 });
        const { schema } = await reader.schemas.getSchema(ctx, { ...key, schemaVersion: 0 });
        if (committed) {
          expect([config.version, config.values, config.audit.schemaVersion]).toEqual([3, { port: 8 }, 2]);
          expect([schema.schemaVersion, schema.version, schema.schema]).toEqual([2, 3, strict]);
        } else {
          expect([config.version, config.values, config.audit.schemaVersion]).toEqual([2, { port: 80 }, 1]);
          expect([schema.schemaVersion, schema.schema]).toEqual([1, { type: 'object' }]);
        }
      }
      // The next write, through the other node, is checked against whichever schema is in force.
      const next = otherNode.config.put(ctx, { ...key, values: { port: 99 } });
      if (committed) {
        const error = await next.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CfgdError);
        expect((error as CfgdError).reason).toBe('SCHEMA_VIOLATION');
      } else {
        expect((await next).config.version).toBe(3);
      }
      await faulty.close();
      await other.close();
    },
  );
});
