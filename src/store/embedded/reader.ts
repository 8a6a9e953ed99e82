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

  constructor(readonly db: Database) {
    this.stmts = {
      head: db.prepare<[string, string], HeadRow>(
        'SELECT version, first_kept, max_versions FROM config_heads WHERE user_id = ? AND config_name = ?',
      ),
      version: db.prepare<[string, string, number], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions WHERE user_id = ? AND config_name = ? AND version = ?`,
      ),
      versionsAfter: db.prepare<[string, string, number, number], StoredVersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM config_versions
         WHERE user_id = ? AND config_name = ? AND version > ? ORDER BY version LIMIT ?`,
      ),
      audit: db.prepare<[string, string, number, number], StoredAuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM config_versions
         WHERE user_id = ? AND config_name = ? AND version >= ? ORDER BY version LIMIT ?`,
      ),
      latestOfUser: db.prepare<[string], StoredVersionRow & { config_name: string }>(
        `SELECT h.config_name, ${VERSION_COLUMNS.split(', ')
          .map((column) => `v.${column}`)
          .join(', ')}
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

  latest(key: ConfigKey): ConfigVersion | undefined {
    return this.snapshot(() => {
      const head = this.head(key);
      if (head === undefined) return undefined;
      const row = this.stmts.version.get(key.userId, key.configName, head.version);
      if (row === undefined) throw new Error(`head of ${keyId(key)} points at missing version ${head.version}`);
      return toConfigVersion(key, row);
    });
  }

  version(key: ConfigKey, version: number): ConfigVersion | undefined {
    return this.snapshot(() => {
      if (version < this.firstKept(key)) return undefined;
      const row = this.stmts.version.get(key.userId, key.configName, version);
      return row && toConfigVersion(key, row);
    });
  }

  versionsAfter(key: ConfigKey, after: number, limit: number): ConfigVersion[] {
    return this.snapshot(() => {
      const from = Math.max(after, this.firstKept(key) - 1);
      return this.stmts.versionsAfter
        .all(key.userId, key.configName, from, limit)
        .map((row) => toConfigVersion(key, row));
    });
  }

  auditEntries(key: ConfigKey, from: number, limit: number): AuditEntry[] {
    return this.snapshot(() => {
      const first = Math.max(from, this.firstKept(key));
      return this.stmts.audit.all(key.userId, key.configName, first, limit).map(toAuditEntry);
    });
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
