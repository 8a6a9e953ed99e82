import type {
  AuditEntry,
  Blame,
  Change,
  ConfigKey,
  ConfigSchema,
  ConfigVersion,
  JsonObject,
  Operation,
} from '../domain/index.js';

/**
 * How both backends store a version: values and changes as JSON text, the
 * time in epoch ms. Rows written before schemas existed lack the optional
 * fields: they were puts, checked against no schema, holding values.
 */
export interface StoredAuditRow {
  readonly version: number;
  readonly changes_json: string;
  readonly author: string;
  readonly created_at: number;
  readonly operation?: string | null | undefined;
  readonly schema_version?: number | null | undefined;
  /** Rollbacks only: the version whose values were restored (SQLite: NULL otherwise). */
  readonly rollback_to?: number | null | undefined;
  /** The hash chain (absent on versions written before it). */
  readonly hash?: string | null | undefined;
  readonly previous_hash?: string | null | undefined;
}

export interface StoredVersionRow extends StoredAuditRow {
  readonly values_json: string;
  /** Who last set each key (absent on versions written before cfgd kept it). */
  readonly blame_json?: string | null | undefined;
  /** SQLite stores 0/1, RethinkDB a boolean. */
  readonly has_values?: boolean | number | null | undefined;
}

/** A schema version as stored. */
export interface StoredSchemaRow {
  readonly schema_version: number;
  readonly version: number;
  readonly schema_json: string;
  readonly author: string;
  readonly created_at: number;
}

export function toAuditEntry(row: StoredAuditRow): AuditEntry {
  return {
    version: row.version,
    createdAt: new Date(row.created_at),
    author: row.author,
    changes: JSON.parse(row.changes_json) as Change[],
    operation: (row.operation ?? 'put') as Operation,
    schemaVersion: row.schema_version ?? 0,
    ...(row.rollback_to === undefined || row.rollback_to === null ? {} : { rollbackTo: row.rollback_to }),
    ...(row.hash === undefined || row.hash === null ? {} : { hash: row.hash, previousHash: row.previous_hash ?? '' }),
  };
}

export function toConfigVersion(key: ConfigKey, row: StoredVersionRow): ConfigVersion {
  return {
    key,
    version: row.version,
    values: JSON.parse(row.values_json) as JsonObject,
    hasValues: row.has_values === undefined || row.has_values === null ? true : Boolean(row.has_values),
    audit: toAuditEntry(row),
    ...(row.blame_json === undefined || row.blame_json === null ? {} : { blame: JSON.parse(row.blame_json) as Blame }),
  };
}

export function toConfigSchema(row: StoredSchemaRow): ConfigSchema {
  return {
    schemaVersion: row.schema_version,
    version: row.version,
    schema: JSON.parse(row.schema_json) as JsonObject,
    createdAt: new Date(row.created_at),
    author: row.author,
  };
}
