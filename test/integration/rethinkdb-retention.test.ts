/**
 * Retention on RethinkDB: versions beyond the limit are removed from the
 * versions table (not only hidden), the schemas they set survive them, and
 * readers on another node see the raised floor at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import rethinkdb from 'rethinkdb';
import { configUuid } from '../../src/domain/index.js';
import { versionId } from '../../src/store/rethinkdb/queries.js';
import { rejection } from '../helpers/client.js';
import { freshDatabase, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { getSchema, grpcRefusal, setSchema } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

const db = freshDatabase('retention');
let nodeA: TestServer;
let nodeB: TestServer;
let connection: rethinkdb.Connection;
beforeAll(async () => {
  nodeA = await startTestServer({ store: rethinkStoreConfig(db), maxVersions: 20 });
  nodeB = await startTestServer({ store: rethinkStoreConfig(db), maxVersions: 20 });
  const config = rethinkStoreConfig(db);
  connection = await rethinkdb.connect({ host: config.host, port: config.port });
});
afterAll(async () => {
  await connection.close();
  await nodeA.stop();
  await nodeB.stop();
});

describe('retention on RethinkDB', () => {
  it('keeps the newest versions in the table, the schemas of pruned ones, and a floor every node honours', async () => {
    const a = nodeA.client();
    const b = nodeB.client();
    const key = { userId: 'retention', configName: 'app' };
    await a.put({ ...key, values: { i: 0 } });
    await setSchema(a, { ...key, schema: { type: 'object', required: ['i'] } });
    for (let i = 3; i <= 300; i++) await a.put({ ...key, values: { i } });
    const table = rethinkdb.db(db).table('config_versions');
    const configId = configUuid(key);
    const stored = async () =>
      await table.between(versionId(configId, 0), versionId(configId, 1_000_000)).count().run(connection);
    await eventually(async () => expect(await stored()).toBe(20));
    // Node B reads from the floor node A raised.
    const history = await b.history({ ...key, pageSize: 1000 });
    expect(history.entries.map((e) => e.version)).toEqual(Array.from({ length: 20 }, (_, i) => 281 + i));
    expect(grpcRefusal(await rejection(b.get({ ...key, version: 2 }))).reason).toBe('VERSION_PRUNED');
    // The schema set by pruned version 2 is still in force and readable, on both nodes.
    expect((await getSchema(b, key)).schema).toMatchObject({ schemaVersion: 1, version: 2 });
    expect(grpcRefusal(await rejection(b.put({ ...key, values: { other: 1 } }))).reason).toBe('SCHEMA_VIOLATION');
  }, 120_000);
});
