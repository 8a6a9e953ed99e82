/**
 * Tamper-evident history on the embedded store: each version's hash covers
 * its content and its predecessor's hash, so an edit made directly in the
 * SQLite file is reported by VerifyHistory at the version edited (or, for an
 * edit whose hash was recomputed, at the next one).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { tamperScenario, type StoredHistory } from '../helpers/chain-tampering.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The same better-sqlite3 the store loads on this Node (see sqlite-store.ts).
const Database = createRequire(import.meta.url)(
  Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-13' : 'better-sqlite3',
) as typeof import('better-sqlite3');

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

describe('the hash chain on the embedded store', () => {
  it('verifies a history, and reports each direct edit of the SQLite file at the version edited', async () => {
    const key = { userId: 'chain', configName: 'app' };
    // A second connection to the running store's file (WAL lets both in).
    const db = new Database(join(server.dataDir, 'cfgd.db'));
    const stored: StoredHistory = {
      read: async (version) => {
        const row = db
          .prepare('SELECT * FROM config_versions WHERE user_id = ? AND config_name = ? AND version = ?')
          .get(key.userId, key.configName, version) as Record<string, unknown>;
        const schema = db
          .prepare('SELECT schema_json FROM config_schemas WHERE user_id = ? AND config_name = ? AND version = ?')
          .get(key.userId, key.configName, version) as { schema_json: string } | undefined;
        return { ...row, ...(schema ?? {}) };
      },
      update: async (version, fields) => {
        for (const [name, value] of Object.entries(fields)) {
          // The schema of a set-schema version lives in its own table.
          const table = name === 'schema_json' ? 'config_schemas' : 'config_versions';
          db.prepare(`UPDATE ${table} SET ${name} = ? WHERE user_id = ? AND config_name = ? AND version = ?`).run(
            value,
            key.userId,
            key.configName,
            version,
          );
        }
      },
    };
    try {
      await tamperScenario(server.client(), key, stored);
    } finally {
      db.close();
    }
  });
});
