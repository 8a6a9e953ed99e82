import type { AuditEntry, ConfigKey, ConfigSchema, ConfigVersion, RequestRecord } from '../../domain/index.js';
import { FIRST_VERSION, type Retention } from '../store.js';
import {
  toAuditEntry,
  toConfigSchema,
  toConfigVersion,
  type StoredAuditRow,
  type StoredSchemaRow,
  type StoredVersionRow,
} from '../stored-row.js';
import { keyId } from '../subscribers.js';
import { AUDIT_COLUMNS, SCHEMA_CACHE_SIZE, SCHEMA_COLUMNS, VERSION_COLUMNS, type Database } from './database.js';

/** Configs whose latest version is kept parsed. */
const LATEST_CACHE_SIZE = 1024;

/** The parameters of a read of a config's versions. */
interface Bound {
  readonly user: string;
  readonly config: string;
  readonly version: number;
  readonly limit?: number;
}

/** `a, b` → `v.a, v.b`. */
function qualified(table: string, columns: string): string {
  return columns
    .split(', ')
    .map((column) => `${table}.${column}`)
    .join(', ');
}

/** A config's head row: its latest version, its first kept version and its own retention limit. */
export interface HeadRow {
  readonly version: number;
  readonly first_kept: number;
  readonly max_versions: number | null;
}

/**
 * Every read of the embedded store, on one connection. The writer reads
 * through it inside its transactions; a worker process (see `WorkerStore`)
 * reads through its own connection to the same file, which in WAL mode sees
 * every transaction committed before its read began.
 */
export class EmbeddedReader {
  private readonly stmts;
  /** Committed schema versions (immutable), so that a write does not read and parse its schema again. */
  private readonly schemaCache = new Map<string, ConfigSchema>();
  /** The latest version of recently read configs, least recently used first. */
  private readonly latestCache = new Map<string, ConfigVersion>();

  constructor(readonly db: Database) {
    // Each read is one statement, so it sees one committed state without a transaction of its own.
    const firstKept = `COALESCE((SELECT first_kept FROM config_heads WHERE user_id = @user AND config_name = @config), ${FIRST_VERSION})`;
    this.stmts = {
      head: db.prepare<[string, string], HeadRow>(
        'SELECT version, first_kept, max_versions FROM config_heads WHERE user_id = ? AND config_name = ?',
      ),
      headVersion: db
        .prepare<[string, string], number>('SELECT version FROM config_heads WHERE user_id = ? AND config_name = ?')
        .pluck(),
      latest: db.prepare<[string, string], StoredVersionRow>(
        `SELECT ${qualified('v', VERSION_COLUMNS)} FROM config_heads h JOIN config_versions v
           ON v.user_id = h.user_id AND v.config_name = h.config_name AND v.version = h.version
         WHERE h.user_id = ? AND h.config_name = ?`,
      ),
      version: db.prepare<[Bound], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions
         WHERE user_id = @user AND config_name = @config AND version = @version AND version >= ${firstKept}`,
      ),
      versionsAfter: db.prepare<[Bound], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions
         WHERE user_id = @user AND config_name = @config AND version > MAX(@version, ${firstKept} - 1)
         ORDER BY version LIMIT @limit`,
      ),
      audit: db.prepare<[Bound], StoredAuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM config_versions
         WHERE user_id = @user AND config_name = @config AND version >= MAX(@version, ${firstKept})
         ORDER BY version LIMIT @limit`,
      ),
      latestOfUser: db.prepare<[string], StoredVersionRow & { config_name: string }>(
        `SELECT h.config_name, ${qualified('v', VERSION_COLUMNS)}
         FROM config_heads h JOIN config_versions v
           ON v.user_id = h.user_id AND v.config_name = h.config_name AND v.version = h.version
         WHERE h.user_id = ? ORDER BY h.config_name`,
      ),
      schema: db.prepare<[string, string, number], StoredSchemaRow>(
        `SELECT ${SCHEMA_COLUMNS} FROM config_schemas WHERE user_id = ? AND config_name = ? AND schema_version = ?`,
      ),
      schemas: db.prepare<[string, string, number, number], StoredSchemaRow>(
        `SELECT ${SCHEMA_COLUMNS} FROM config_schemas
         WHERE user_id = ? AND config_name = ? AND schema_version >= ? ORDER BY schema_version LIMIT ?`,
      ),
      request: db.prepare<[string, string, string], { fingerprint: string; version: number; changed: number }>(
        `SELECT fingerprint, version, changed FROM config_requests WHERE user_id = ? AND config_name = ? AND request_id = ?`,
      ),
    };
  }

  /** Runs `read` in one read transaction: every statement in it sees the same committed state. */
  snapshot<T>(read: () => T): T {
    return this.db.inTransaction ? read() : this.db.transaction(read).deferred();
  }

  head(key: ConfigKey): HeadRow | undefined {
    return this.stmts.head.get(key.userId, key.configName);
  }

  /** Reads the heads table (a key no config has), the read every other read starts from. */
  ping(): void {
    this.stmts.head.get('', '');
  }

  /**
   * The latest version. Hot configs' latest versions are kept parsed, and the
   * same object is returned for as long as it is the latest, so that callers
   * can keep what they derive from it (a response's encoding) by its identity.
   * A hit costs one read of the head's version number, so a version
   * committed by another connection (the writer, seen from a worker) is never
   * missed.
   */
  latest(key: ConfigKey): ConfigVersion | undefined {
    const id = keyId(key);
    const cached = this.latestCache.get(id);
    if (cached !== undefined) {
      if (this.stmts.headVersion.get(key.userId, key.configName) === cached.version) {
        this.latestCache.delete(id);
        this.latestCache.set(id, cached);
        return cached;
      }
      this.latestCache.delete(id);
    }
    const row = this.stmts.latest.get(key.userId, key.configName);
    if (row === undefined) return undefined;
    const latest = toConfigVersion(key, row);
    this.rememberLatest(latest);
    return latest;
  }

  /** Caches a version the writer just stored as its config's latest (forgotten again if its commit fails). */
  rememberLatest(latest: ConfigVersion): void {
    const id = keyId(latest.key);
    this.latestCache.delete(id);
    this.latestCache.set(id, latest);
    if (this.latestCache.size > LATEST_CACHE_SIZE) this.latestCache.delete(this.latestCache.keys().next().value!);
  }

  /** Forgets the config's cached latest version: the writer is committing a new one. */
  forgetLatest(key: ConfigKey): void {
    this.latestCache.delete(keyId(key));
  }

  /** Forgets every cached latest version: a transaction that read its own writes did not commit. */
  forgetAll(): void {
    this.latestCache.clear();
  }

  version(key: ConfigKey, version: number): ConfigVersion | undefined {
    const row = this.stmts.version.get({ user: key.userId, config: key.configName, version });
    return row && toConfigVersion(key, row);
  }

  versionsAfter(key: ConfigKey, after: number, limit: number): ConfigVersion[] {
    return this.stmts.versionsAfter
      .all({ user: key.userId, config: key.configName, version: after, limit })
      .map((row) => toConfigVersion(key, row));
  }

  auditEntries(key: ConfigKey, from: number, limit: number): AuditEntry[] {
    return this.stmts.audit.all({ user: key.userId, config: key.configName, version: from, limit }).map(toAuditEntry);
  }

  /** Where the config's kept history starts: the floor `prune` records on the head (raised before it removes anything). */
  firstKept(key: ConfigKey): number {
    return this.head(key)?.first_kept ?? FIRST_VERSION;
  }

  retention(key: ConfigKey): Retention | undefined {
    const head = this.head(key);
    return head && { firstKept: head.first_kept, maxVersions: head.max_versions ?? undefined };
  }

  schemas(key: ConfigKey, from: number, limit: number): ConfigSchema[] {
    return this.stmts.schemas.all(key.userId, key.configName, Math.max(from, 1), limit).map(toConfigSchema);
  }

  schema(key: ConfigKey, schemaVersion: number): ConfigSchema | undefined {
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

  listLatest(userId: string): ConfigVersion[] {
    return this.stmts.latestOfUser
      .all(userId)
      .map((row) => toConfigVersion({ userId, configName: row.config_name }, row));
  }

  /** What an earlier request with this id did to the config, if any. */
  request(key: ConfigKey, requestId: string): RequestRecord | undefined {
    const row = this.stmts.request.get(key.userId, key.configName, requestId);
    return row && { requestId, fingerprint: row.fingerprint, version: row.version, changed: row.changed === 1 };
  }
}

/**
 * The read side of `ConfigStore` over an `EmbeddedReader`: the same for the
 * writer's store and a worker's, which differ only in how they write.
 */
export abstract class EmbeddedReads {
  protected abstract readonly reader: EmbeddedReader;

  async latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    return this.reader.latest(key);
  }

  async version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    return this.reader.version(key, version);
  }

  async versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    return this.reader.versionsAfter(key, after, limit);
  }

  async auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    return this.reader.auditEntries(key, from, limit);
  }

  async firstKeptVersion(key: ConfigKey): Promise<number> {
    return this.reader.firstKept(key);
  }

  async retention(key: ConfigKey): Promise<Retention | undefined> {
    return this.reader.retention(key);
  }

  async schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined> {
    return this.reader.schema(key, schemaVersion);
  }

  async schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]> {
    return this.reader.schemas(key, from, limit);
  }

  async listLatest(userId: string): Promise<ConfigVersion[]> {
    return this.reader.listLatest(userId);
  }

  async ping(): Promise<void> {
    this.reader.ping();
  }
}
