/**
 * Tamper-evident history on RethinkDB: a version document edited directly in
 * the database (values, author, time, changes, the schema it sets, its hash)
 * is reported by VerifyHistory at that version, through any node.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import rethinkdb from 'rethinkdb';
import { configUuid } from '../../src/domain/index.js';
import { versionId } from '../../src/store/rethinkdb/queries.js';
import { tamperScenario, type StoredHistory } from '../helpers/chain-tampering.js';
import { freshDatabase, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const db = freshDatabase('chain');
let server: TestServer;
let connection: rethinkdb.Connection;
beforeAll(async () => {
  server = await startTestServer({ store: rethinkStoreConfig(db) });
  const config = rethinkStoreConfig(db);
  connection = await rethinkdb.connect({ host: config.host, port: config.port });
});
afterAll(async () => {
  await connection.close();
  await server.stop();
});

describe('the hash chain on RethinkDB', () => {
  it('verifies a history, and reports each direct edit of a version document at that version', async () => {
    const key = { userId: 'chain', configName: 'app' };
    const table = rethinkdb.db(db).table('config_versions');
    const id = (version: number) => versionId(configUuid(key), version);
    const stored: StoredHistory = {
      read: async (version) => (await table.get(id(version)).run(connection)) as unknown as Record<string, unknown>,
      update: async (version, fields) => {
        await table.get(id(version)).update(fields).run(connection);
      },
    };
    await tamperScenario(server.client(), key, stored);
  });
});
