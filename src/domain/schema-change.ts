import { expectVersion, nextVersion, type ConfigVersion, type WritePlan } from './config.js';
import type { ConfigKey } from './names.js';
import {
  assertSatisfies,
  schemaIncompatible,
  schemaVersionMismatch,
  type ConfigSchema,
  type SchemaCheck,
} from './schemas.js';
import { jsonEqual, type JsonObject } from './values.js';

/** A request to set a config's schema. */
export interface SetSchemaRequest {
  readonly schema: JsonObject;
  /** How values are checked against `schema` (compiled by the caller). */
  readonly check: SchemaCheck;
  /** Values that replace the current ones in the same commit; they must satisfy `schema`. */
  readonly migrationValues?: JsonObject | undefined;
  /** Compare-and-set on the schema: the schema version the config must be at; 0 = must have none. */
  readonly expectedSchemaVersion?: number | undefined;
  /** Compare-and-set on the config's version, as on Put. */
  readonly expectedVersion?: number | undefined;
  readonly author: string;
  readonly now: Date;
}

/**
 * Decides a schema change against the config's current version and schema.
 * A schema change is a version of the config: it takes the next version
 * number, carries the values on (or the migration values), and its audit
 * entry has the operation `set-schema` and the new schema version. So a
 * schema commits exactly like values do, through the one commit point of
 * each backend, and every write after it (on any node) plans against it.
 *
 * - The current values (or the migration values) must satisfy the new schema:
 *   otherwise FAILED_PRECONDITION (`SCHEMA_INCOMPATIBLE`), or, for migration
 *   values, INVALID_ARGUMENT (`SCHEMA_VIOLATION`), each listing the violations.
 * - The same schema again, without migration values, changes nothing.
 * - On a config that does not exist, the schema is set before its first
 *   values: the version holds no values (`hasValues` false) unless migration
 *   values come with it.
 */
export function planSetSchema(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  currentSchema: ConfigSchema | undefined,
  request: SetSchemaRequest,
): WritePlan {
  const currentSchemaVersion = current?.audit.schemaVersion ?? 0;
  if (request.expectedSchemaVersion !== undefined && request.expectedSchemaVersion !== currentSchemaVersion) {
    throw schemaVersionMismatch(request.expectedSchemaVersion, currentSchemaVersion);
  }
  expectVersion(request.expectedVersion, current);
  const schemaVersion = currentSchemaVersion + 1;
  const migration = request.migrationValues;
  if (migration !== undefined) {
    assertSatisfies(request.check, migration, schemaVersion, 'migration_values');
  } else if (current?.hasValues === true) {
    const violations = request.check(current.values);
    if (violations.length > 0) throw schemaIncompatible(violations, schemaVersion, current.version);
  }
  const sameSchema = currentSchema !== undefined && jsonEqual(currentSchema.schema, request.schema);
  const sameValues = migration === undefined || (current?.hasValues === true && jsonEqual(current.values, migration));
  if (current !== undefined && sameSchema && sameValues) return { kind: 'unchanged', current };
  const next = nextVersion(key, current, {
    // The migration values, or the current ones carried on (none, before the first values).
    values: migration ?? (current?.hasValues === true ? current.values : undefined),
    operation: 'set-schema',
    schemaVersion,
    author: request.author,
    now: request.now,
  });
  return {
    kind: 'create',
    next,
    schema: {
      schemaVersion,
      version: next.version,
      schema: request.schema,
      createdAt: request.now,
      author: request.author,
    },
  };
}
