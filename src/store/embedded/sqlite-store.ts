import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type {
  AuditEntry,
  ConfigKey,
  ConfigSchema,
  ConfigVersion,
  Planner,
  RequestIdentity,
  RequestRecord,
  WriteOutcome,
  WritePlan,
} from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import {
  FIRST_VERSION,
  type ConfigStore,
  type Retention,
  type StoreStats,
  type SubscriptionScope,
  type Unsubscribe,
  type Wake,
} from '../store.js';
import {
  toAuditEntry,
  toConfigSchema,
  toConfigVersion,
  type StoredAuditRow,
  type StoredSchemaRow,
  type StoredVersionRow,
} from '../stored-row.js';
import { keyId, Subscribers } from '../subscribers.js';
import { CREDENTIAL_SCHEMA, EmbeddedCredentials } from './credentials.js';

/**
 * better-sqlite3, in the major version that is safe on the running Node.
 * Up to 12 its objects use Node's raw ObjectWrap, whose destructor on Node 24
 * asserts that a Node environment is current: a database or statement
 * finalized without one (at exit, or by a GC outside any context) aborts the
 * process with "Assertion failed: (env) != nullptr". 13 (Node-API) has no such
 * destructor, but needs Node 22 and crashes on Node 20. Both are installed
 * (13 as the alias better-sqlite3-13) and the API is the same.
 */
const Database = createRequire(import.meta.url)(
  Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-13' : 'better-sqlite3',
) as typeof BetterSqlite3;
type Database = BetterSqlite3.Database;

export interface EmbeddedStoreOptions {
  /** Directory that holds the database; created when missing. `:memory:` keeps nothing on disk. */
  readonly path: string;
  /**
   * `full` fsyncs every commit before it is acknowledged (survives power loss);
   * `normal` survives a crash of the process but may lose the last commits on
   * power loss.
   */
  readonly sync: 'full' | 'normal';
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
const PRUNE_STEP = 500;

/** Schema versions kept parsed in memory. */
const SCHEMA_CACHE_SIZE = 1024;

const VERSION_COLUMNS =
  'version, values_json, changes_json, author, created_at, operation, schema_version, has_values, rollback_to, hash, previous_hash, blame_json';
const AUDIT_COLUMNS =
  'version, changes_json, author, created_at, operation, schema_version, rollback_to, hash, previous_hash';
const SCHEMA_COLUMNS = 'schema_version, version, schema_json, author, created_at';

/**
 * The default backend: SQLite (better-sqlite3) in WAL mode in one process.
 * A write is one SQLite transaction holding the new version row (values and
 * audit entry) and the head pointer, so a crash leaves both or neither.
 * better-sqlite3 runs each transaction to completion on the event loop, so
 * writes in this process serialize without further locking.
 */
export class EmbeddedStore implements ConfigStore {
  private readonly db: Database;
  private readonly subscribers = new Subscribers();
  private readonly stmts;
  private readonly tokensAndBindings: EmbeddedCredentials;
  private readonly syncFull: boolean;
  /** Committed schema versions (immutable), so that a write does not read and parse its schema again. */
  private readonly schemaCache = new Map<string, ConfigSchema>();

  constructor(options: EmbeddedStoreOptions) {
    const file = options.path === ':memory:' ? ':memory:' : join(ensureDir(options.path), 'cfgd.db');
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.syncFull = options.sync === 'full';
    this.db.pragma(`synchronous = ${this.syncFull ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    addMissingColumns(this.db, 'config_versions', ADDED_VERSION_COLUMNS);
    addMissingColumns(this.db, 'config_heads', ADDED_HEAD_COLUMNS);
    this.db.exec(CREDENTIAL_SCHEMA);
    this.tokensAndBindings = new EmbeddedCredentials(this.db);
    this.stmts = {
      head: this.db.prepare<[string, string], { version: number; first_kept: number; max_versions: number | null }>(
        'SELECT version, first_kept, max_versions FROM config_heads WHERE user_id = ? AND config_name = ?',
      ),
      setMaxVersions: this.db.prepare('UPDATE config_heads SET max_versions = ? WHERE user_id = ? AND config_name = ?'),
      raiseFloor: this.db.prepare(
        `UPDATE config_heads SET first_kept = MAX(first_kept, MIN(?, version)) WHERE user_id = ? AND config_name = ?`,
      ),
      pruneStep: this.db.prepare(
        `DELETE FROM config_versions WHERE user_id = ? AND config_name = ? AND version IN (
           SELECT version FROM config_versions WHERE user_id = ? AND config_name = ? AND version < ?
           ORDER BY version LIMIT ${PRUNE_STEP})`,
      ),
      version: this.db.prepare<[string, string, number], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions WHERE user_id = ? AND config_name = ? AND version = ?`,
      ),
      versionsAfter: this.db.prepare<[string, string, number, number], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions
         WHERE user_id = ? AND config_name = ? AND version > ? ORDER BY version LIMIT ?`,
      ),
      audit: this.db.prepare<[string, string, number, number], StoredAuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM config_versions
         WHERE user_id = ? AND config_name = ? AND version >= ? ORDER BY version LIMIT ?`,
      ),
      latestOfUser: this.db.prepare<[string], StoredVersionRow & { config_name: string }>(
        `SELECT h.config_name, ${VERSION_COLUMNS.split(', ')
          .map((column) => `v.${column}`)
          .join(', ')}
         FROM config_heads h JOIN config_versions v
           ON v.user_id = h.user_id AND v.config_name = h.config_name AND v.version = h.version
         WHERE h.user_id = ? ORDER BY h.config_name`,
      ),
      insertVersion: this.db.prepare(
        `INSERT INTO config_versions (user_id, config_name, ${VERSION_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      schema: this.db.prepare<[string, string, number], StoredSchemaRow>(
        `SELECT ${SCHEMA_COLUMNS} FROM config_schemas WHERE user_id = ? AND config_name = ? AND schema_version = ?`,
      ),
      schemas: this.db.prepare<[string, string, number, number], StoredSchemaRow>(
        `SELECT ${SCHEMA_COLUMNS} FROM config_schemas
         WHERE user_id = ? AND config_name = ? AND schema_version >= ? ORDER BY schema_version LIMIT ?`,
      ),
      request: this.db.prepare<[string, string, string], { fingerprint: string; version: number; changed: number }>(
        `SELECT fingerprint, version, changed FROM config_requests WHERE user_id = ? AND config_name = ? AND request_id = ?`,
      ),
      insertRequest: this.db.prepare(
        `INSERT INTO config_requests (user_id, config_name, request_id, fingerprint, version, changed, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertSchema: this.db.prepare(
        `INSERT INTO config_schemas (user_id, config_name, ${SCHEMA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      upsertHead: this.db.prepare(
        `INSERT INTO config_heads (user_id, config_name, version) VALUES (?, ?, ?)
         ON CONFLICT (user_id, config_name) DO UPDATE SET version = excluded.version`,
      ),
    };
  }

  async write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    const result = this.db
      .transaction((): WriteOutcome => {
        if (request !== undefined) {
          const seen = this.stmts.request.get(key.userId, key.configName, request.requestId);
          if (seen !== undefined) return { kind: 'replay', record: toRecord(request.requestId, seen) };
        }
        const current = this.readLatest(key);
        const decision = plan(current, this.readSchema(key, current?.audit.schemaVersion ?? 0));
        if (decision.kind === 'create') {
          const { next, schema } = decision;
          this.stmts.insertVersion.run(
            key.userId,
            key.configName,
            next.version,
            JSON.stringify(next.values),
            JSON.stringify(next.audit.changes),
            next.audit.author,
            next.audit.createdAt.getTime(),
            next.audit.operation,
            next.audit.schemaVersion,
            next.hasValues ? 1 : 0,
            next.audit.rollbackTo ?? null,
            next.audit.hash ?? null,
            next.audit.previousHash ?? null,
            next.blame === undefined ? null : JSON.stringify(next.blame),
          );
          if (schema !== undefined) {
            this.stmts.insertSchema.run(
              key.userId,
              key.configName,
              schema.schemaVersion,
              schema.version,
              JSON.stringify(schema.schema),
              schema.author,
              schema.createdAt.getTime(),
            );
          }
          this.stmts.upsertHead.run(key.userId, key.configName, next.version);
        }
        if (request !== undefined) this.recordRequest(key, request, decision);
        return decision;
      })
      .immediate();
    if (result.kind === 'create') this.subscribers.wake(key.userId, key.configName);
    return result;
  }

  async latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    return this.readLatest(key);
  }

  async version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    if (version < this.firstKept(key)) return undefined;
    const row = this.stmts.version.get(key.userId, key.configName, version);
    return row && toConfigVersion(key, row);
  }

  async versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    const from = Math.max(after, this.firstKept(key) - 1);
    return this.stmts.versionsAfter
      .all(key.userId, key.configName, from, limit)
      .map((row) => toConfigVersion(key, row));
  }

  async auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    const first = Math.max(from, this.firstKept(key));
    return this.stmts.audit.all(key.userId, key.configName, first, limit).map(toAuditEntry);
  }

  async firstKeptVersion(key: ConfigKey): Promise<number> {
    return this.firstKept(key);
  }

  async schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined> {
    return this.readSchema(key, schemaVersion);
  }

  async schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]> {
    return this.stmts.schemas.all(key.userId, key.configName, Math.max(from, 1), limit).map(toConfigSchema);
  }

  async retention(key: ConfigKey): Promise<Retention | undefined> {
    const head = this.stmts.head.get(key.userId, key.configName);
    return head && { firstKept: head.first_kept, maxVersions: head.max_versions ?? undefined };
  }

  async setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean> {
    return this.stmts.setMaxVersions.run(maxVersions ?? null, key.userId, key.configName).changes === 1;
  }

  async prune(key: ConfigKey, floor: number): Promise<number> {
    // The floor first, so that readers stop looking below it before anything is removed.
    this.unsynced(() => this.stmts.raiseFloor.run(floor, key.userId, key.configName));
    const first = this.firstKept(key);
    for (;;) {
      const removed = this.unsynced(
        () => this.stmts.pruneStep.run(key.userId, key.configName, key.userId, key.configName, first).changes,
      );
      if (removed < PRUNE_STEP) return first;
      // Let writes in between the steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Runs a statement without its own fsync. Pruning need not be durable: lost
   * to a power cut, its floor and its deletions go together (one transaction
   * each), and the next prune does them again; the next synced commit makes
   * it durable anyway. Nothing else runs in between: better-sqlite3 is
   * synchronous.
   */
  private unsynced<T>(run: () => T): T {
    if (!this.syncFull) return run();
    this.db.pragma('synchronous = NORMAL');
    try {
      return run();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  async listLatest(userId: string): Promise<ConfigVersion[]> {
    return this.stmts.latestOfUser
      .all(userId)
      .map((row) => toConfigVersion({ userId, configName: row.config_name }, row));
  }

  async subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    // Commits wake listeners synchronously after they commit, so a listener is live at once.
    return this.subscribers.add(scope, wake);
  }

  get credentials(): CredentialStore {
    return this.tokensAndBindings;
  }

  stats(): StoreStats {
    return { subscriptions: this.subscribers.size, changefeeds: 0 };
  }

  async close(): Promise<void> {
    this.subscribers.clear();
    this.tokensAndBindings.close();
    if (this.db.open) this.db.close();
  }

  /** Where the config's kept history starts: the floor `prune` records on the head (raised before it removes anything). */
  private firstKept(key: ConfigKey): number {
    return this.stmts.head.get(key.userId, key.configName)?.first_kept ?? FIRST_VERSION;
  }

  /** Remembers what a request with an id did, in the transaction of its write. */
  private recordRequest(key: ConfigKey, request: RequestIdentity, decision: WritePlan): void {
    const [version, changed] = decision.kind === 'create' ? [decision.next.version, 1] : [decision.current.version, 0];
    this.stmts.insertRequest.run(
      key.userId,
      key.configName,
      request.requestId,
      request.fingerprint,
      version,
      changed,
      Date.now(),
    );
  }

  private readSchema(key: ConfigKey, schemaVersion: number): ConfigSchema | undefined {
    if (schemaVersion === 0) return undefined;
    const id = `${key.userId}/${key.configName}/${schemaVersion}`;
    const cached = this.schemaCache.get(id);
    if (cached !== undefined) {
      this.schemaCache.delete(id);
      this.schemaCache.set(id, cached);
      return cached;
    }
    const row = this.stmts.schema.get(key.userId, key.configName, schemaVersion);
    if (row === undefined) return undefined;
    const schema = toConfigSchema(row);
    this.schemaCache.set(id, schema);
    if (this.schemaCache.size > SCHEMA_CACHE_SIZE) this.schemaCache.delete(this.schemaCache.keys().next().value!);
    return schema;
  }

  private readLatest(key: ConfigKey): ConfigVersion | undefined {
    const head = this.stmts.head.get(key.userId, key.configName);
    if (head === undefined) return undefined;
    const row = this.stmts.version.get(key.userId, key.configName, head.version);
    if (row === undefined) throw new Error(`head of ${keyId(key)} points at missing version ${head.version}`);
    return toConfigVersion(key, row);
  }
}

function toRecord(requestId: string, row: { fingerprint: string; version: number; changed: number }): RequestRecord {
  return { requestId, fingerprint: row.fingerprint, version: row.version, changed: row.changed === 1 };
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
