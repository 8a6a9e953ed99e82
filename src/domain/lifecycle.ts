import { configNotFound, expectVersion, nextVersion, type ConfigVersion, type WritePlan } from './config.js';
import { CfgdError } from './errors.js';
import { resourceName, type ConfigKey } from './names.js';
import { assertSatisfies, type SchemaCheck } from './schemas.js';
import { isJsonObject, jsonEqual, type JsonObject, type JsonValue } from './values.js';

/** Who asks for a lifecycle change, when, and on which version (compare-and-set). */
export interface LifecycleRequest {
  readonly expectedVersion?: number | undefined;
  readonly author: string;
  readonly now: Date;
}

/**
 * JSON Merge Patch (RFC 7386) of `target` by `patch`: members of the patch
 * replace those of the target, `null` removes a member, and objects merge
 * member by member, recursively. Kept members keep their place; new ones
 * follow in the patch's order. Pure: neither argument is changed.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const entries: [string, JsonValue][] = [];
  for (const [key, value] of Object.entries(target)) {
    if (!Object.hasOwn(patch, key)) entries.push([key, value]);
    else if (patch[key] !== null) entries.push([key, merged(value, patch[key] as JsonValue)]);
  }
  for (const [key, value] of Object.entries(patch)) {
    if (!Object.hasOwn(target, key) && value !== null) entries.push([key, merged(undefined, value)]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays data.
  return Object.fromEntries(entries);
}

function merged(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return patch;
  return mergePatch(isJsonObject(target) ? target : {}, patch);
}

/**
 * Patch: the current values merged with `patch` (RFC 7386), checked against
 * the schema in force like a Put. A config without values (never written,
 * deleted, or only a schema) has nothing to patch: NOT_FOUND. A patch that
 * changes nothing creates no version.
 */
export function planPatch(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  request: LifecycleRequest & { readonly patch: JsonObject },
  check: SchemaCheck | undefined,
): WritePlan {
  expectVersion(request.expectedVersion, current);
  const live = requireValues(key, current);
  return planValues(key, live, mergePatch(live.values, request.patch), 'patch', request, check);
}

/**
 * Rollback: a new version holding the values of `target` (an earlier version,
 * read beforehand: versions never change), checked against the schema in
 * force now; its audit entry names the version it rolled back to. History is
 * never rewritten. Values equal to the current ones create no version.
 */
export function planRollback(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  target: ConfigVersion,
  request: LifecycleRequest,
  check: SchemaCheck | undefined,
): WritePlan {
  expectVersion(request.expectedVersion, current);
  if (current === undefined) throw configNotFound(key);
  if (!target.hasValues) {
    throw new CfgdError(
      'failed-precondition',
      'VERSION_HAS_NO_VALUES',
      `${resourceName(key)} holds no values at version ${target.version} (${describeEmpty(target)}); roll back to a version with values`,
      { metadata: { resource: resourceName(key), version: String(target.version) } },
    );
  }
  if (current.hasValues && jsonEqual(current.values, target.values)) return { kind: 'unchanged', current };
  return planValues(key, current, target.values, 'rollback', request, check, target.version);
}

/**
 * Delete: a tombstone version without values, whose changes remove every key
 * (so the history still replays). Versions are never reused: a later Put or
 * Undelete continues the sequence. Deleting a deleted config changes nothing;
 * one that never had values is NOT_FOUND.
 */
export function planDelete(key: ConfigKey, current: ConfigVersion | undefined, request: LifecycleRequest): WritePlan {
  expectVersion(request.expectedVersion, current);
  if (current !== undefined && isDeleted(current)) return { kind: 'unchanged', current };
  const live = requireValues(key, current);
  return {
    kind: 'create',
    next: nextVersion(key, live, {
      values: undefined,
      operation: 'delete',
      schemaVersion: live.audit.schemaVersion,
      author: request.author,
      now: request.now,
    }),
  };
}

/**
 * Undelete: the values the delete removed, back as a new version (its
 * changes add them again), checked against the schema in force now. Only a
 * config whose latest version is its tombstone can be undeleted; Rollback
 * restores any earlier version.
 */
export function planUndelete(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  request: LifecycleRequest,
  check: SchemaCheck | undefined,
): WritePlan {
  expectVersion(request.expectedVersion, current);
  if (current === undefined) throw configNotFound(key);
  if (!isDeleted(current)) {
    throw new CfgdError(
      'failed-precondition',
      'CONFIG_NOT_DELETED',
      `${resourceName(key)} is not deleted: its latest version ${current.version} ${current.hasValues ? 'holds values' : 'sets a schema'}`,
      { metadata: { resource: resourceName(key), latest_version: String(current.version) } },
    );
  }
  // The tombstone's changes removed every key with its value, in order: they are the values to restore.
  const restored: JsonObject = Object.fromEntries(current.audit.changes.map((change) => [change.key, change.value]));
  return planValues(key, current, restored, 'undelete', request, check);
}

/** True for a tombstone: the version a Delete created. */
export function isDeleted(version: ConfigVersion): boolean {
  return version.audit.operation === 'delete';
}

/** NOT_FOUND for a config without values now: CONFIG_DELETED for a tombstone, else CONFIG_NOT_FOUND. */
export function noValues(key: ConfigKey, current: ConfigVersion | undefined): CfgdError {
  if (current !== undefined && isDeleted(current)) {
    return new CfgdError(
      'not-found',
      'CONFIG_DELETED',
      `${resourceName(key)} was deleted at version ${current.version}`,
      {
        metadata: {
          resource: resourceName(key),
          deleted_version: String(current.version),
          latest_version: String(current.version),
        },
      },
    );
  }
  if (current !== undefined) {
    return new CfgdError('not-found', 'CONFIG_NOT_FOUND', `${resourceName(key)} has a schema but no values yet`, {
      metadata: { resource: resourceName(key), latest_version: String(current.version) },
    });
  }
  return configNotFound(key);
}

function requireValues(key: ConfigKey, current: ConfigVersion | undefined): ConfigVersion {
  if (current === undefined || !current.hasValues) throw noValues(key, current);
  return current;
}

function describeEmpty(version: ConfigVersion): string {
  return isDeleted(version) ? 'it is a deletion' : 'it set a schema before the first values';
}

/** A version replacing the values, checked against the schema in force; none when they are unchanged. */
function planValues(
  key: ConfigKey,
  current: ConfigVersion,
  values: JsonObject,
  operation: 'patch' | 'rollback' | 'undelete',
  request: LifecycleRequest,
  check: SchemaCheck | undefined,
  rollbackTo?: number,
): WritePlan {
  if (current.hasValues && jsonEqual(current.values, values)) return { kind: 'unchanged', current };
  const schemaVersion = current.audit.schemaVersion;
  assertSatisfies(check, values, schemaVersion);
  return {
    kind: 'create',
    next: nextVersion(key, current, {
      values,
      operation,
      schemaVersion,
      author: request.author,
      now: request.now,
      rollbackTo,
    }),
  };
}
