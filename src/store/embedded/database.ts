import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { StoreEvents } from '../store.js';
import { CREDENTIAL_SCHEMA } from './credentials.js';
import { INSTANCE_SCHEMA } from './instances.js';

/**
 * better-sqlite3, in the major version that is safe on the running Node.
 * Up to 12 its objects use Node's raw ObjectWrap, whose destructor on Node 24
 * asserts that a Node environment is current: a database or statement
 * finalized without one (at exit, or by a GC outside any context) aborts the
 * process with "Assertion failed: (env) != nullptr". 13 (Node-API) has no such
 * destructor, but needs Node 22 and crashes on Node 20. Both are installed
 * (13 as the alias better-sqlite3-13) and the API is the same.
 */
const Sqlite = createRequire(import.meta.url)(
  Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-13' : 'better-sqlite3',
) as typeof BetterSqlite3;
export type Database = BetterSqlite3.Database;

export interface EmbeddedStoreOptions {
  /** Directory that holds the database; created when missing. `:memory:` keeps nothing on disk. */
  readonly path: string;
  /**
   * `full` fsyncs every commit before it is acknowledged (survives power loss);
   * `normal` survives a crash of the process but may lose the last commits on
   * power loss.
   */
  readonly sync: 'full' | 'normal';
  /** Told of each group commit (the writer's store only). */
  readonly events?: StoreEvents | undefined;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS config_heads (
  user_id     TEXT NOT NULL,
  config_name TEXT NOT NULL,
  version     INTEGER NOT NULL,
  first_kept  INTEGER NOT NULL DEFAULT 1,
  max_versions INTEGER,
  PRIMARY KEY (user_id, config_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_versions (
  user_id      TEXT NOT NULL,
  config_name  TEXT NOT NULL,
  version      INTEGER NOT NULL,
  values_json  TEXT NOT NULL,
  changes_json TEXT NOT NULL,
  author       TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (user_id, config_name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_schemas (
  user_id        TEXT NOT NULL,
  config_name    TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  version        INTEGER NOT NULL,
  schema_json    TEXT NOT NULL,
  author         TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (user_id, config_name, schema_version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_requests (
  user_id     TEXT NOT NULL,
  config_name TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  version     INTEGER NOT NULL,
  changed     INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (user_id, config_name, request_id)
) WITHOUT ROWID;
`;

/**
 * Columns added to config_versions after its first release, with the value
 * rows written before them take: a put, checked against no schema, holding values.
 */
const ADDED_VERSION_COLUMNS: readonly (readonly [string, string])[] = [
  ['operation', "TEXT NOT NULL DEFAULT 'put'"],
  ['schema_version', 'INTEGER NOT NULL DEFAULT 0'],
  ['has_values', 'INTEGER NOT NULL DEFAULT 1'],
  ['rollback_to', 'INTEGER'],
  ['hash', 'TEXT'],
  ['previous_hash', 'TEXT'],
  ['blame_json', 'TEXT'],
];

/** Columns added to config_heads after its first release: nothing pruned, the server's limit. */
const ADDED_HEAD_COLUMNS: readonly (readonly [string, string])[] = [
  ['first_kept', 'INTEGER NOT NULL DEFAULT 1'],
  ['max_versions', 'INTEGER'],
];

/** Versions removed per transaction while pruning, so that writes wait at most for one small step. */
export const PRUNE_STEP = 500;

/** Schema versions kept parsed in memory. */
export const SCHEMA_CACHE_SIZE = 1024;

export const VERSION_COLUMNS =
  'version, values_json, changes_json, author, created_at, operation, schema_version, has_values, rollback_to, hash, previous_hash, blame_json';
export const AUDIT_COLUMNS =
  'version, changes_json, author, created_at, operation, schema_version, rollback_to, hash, previous_hash';
export const SCHEMA_COLUMNS = 'schema_version, version, schema_json, author, created_at';

/**
 * Opens the database of an embedded store. The writer creates it when
 * missing, in WAL mode, with the tables and the columns later releases added;
 * a reader (a worker process of the same store) opens what the writer
 * created, and may not write to it.
 */
export function openDatabase(options: EmbeddedStoreOptions, role: 'writer' | 'reader' = 'writer'): Database {
  const file = options.path === ':memory:' ? ':memory:' : join(ensureDir(options.path), 'cfgd.db');
  const db = new Sqlite(file, role === 'reader' ? { fileMustExist: true } : {});
  if (role === 'reader') {
    db.pragma('busy_timeout = 5000');
    db.pragma('query_only = ON');
    return db;
  }
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  addMissingColumns(db, 'config_versions', ADDED_VERSION_COLUMNS);
  addMissingColumns(db, 'config_heads', ADDED_HEAD_COLUMNS);
  db.exec(CREDENTIAL_SCHEMA);
  db.exec(INSTANCE_SCHEMA);
  return db;
}

/** Adds the columns a database created by an earlier cfgd lacks (SQLite fills them with their defaults). */
function addMissingColumns(db: Database, table: string, columns: readonly (readonly [string, string])[]): void {
  const present = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((row) => row.name));
  for (const [name, definition] of columns) {
    if (!present.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${definition}`);
  }
}

function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
