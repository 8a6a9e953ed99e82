import type { AuditEntry, Change, ConfigKey, ConfigVersion, JsonObject } from '../domain/index.js';

/** How both backends store a version: values and changes as JSON text, the time in epoch ms. */
export interface StoredAuditRow {
  readonly version: number;
  readonly changes_json: string;
  readonly author: string;
  readonly created_at: number;
}

export interface StoredVersionRow extends StoredAuditRow {
  readonly values_json: string;
}

export function toAuditEntry(row: StoredAuditRow): AuditEntry {
  return {
    version: row.version,
    createdAt: new Date(row.created_at),
    author: row.author,
    changes: JSON.parse(row.changes_json) as Change[],
  };
}

export function toConfigVersion(key: ConfigKey, row: StoredVersionRow): ConfigVersion {
  return { key, version: row.version, values: JSON.parse(row.values_json) as JsonObject, audit: toAuditEntry(row) };
}
