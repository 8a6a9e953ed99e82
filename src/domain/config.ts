import { diff, type Change } from './changes.js';
import { CfgdError, invalidField } from './errors.js';
import { resourceName, type ConfigKey } from './names.js';
import type { RequestRecord } from './requests.js';
import type { ConfigSchema, SchemaCheck } from './schemas.js';
import { assertSatisfies } from './schemas.js';
import { jsonEqual, type JsonObject } from './values.js';

/**
 * What made a version: a write of values (`put`, `patch`), a schema change
 * (`set-schema`, with any migration values), `rollback` to an earlier
 * version's values, `delete` (a tombstone without values) or `undelete`.
 */
export type Operation = 'put' | 'set-schema' | 'patch' | 'rollback' | 'delete' | 'undelete';

/** The audit entry of one version: when, by whom and what changed. */
export interface AuditEntry {
  readonly version: number;
  readonly createdAt: Date;
  readonly author: string;
  readonly changes: readonly Change[];
  readonly operation: Operation;
  /**
   * The schema version in effect from this version on, which its values were
   * checked against (for a `set-schema` entry, the schema it set); 0: none.
   */
  readonly schemaVersion: number;
  /** On a `rollback` entry: the version whose values it restored. */
  readonly rollbackTo?: number | undefined;
  /** The version's link in its config's hash chain (see `chain.ts`); absent on versions written before it. */
  readonly hash?: string | undefined;
  /** The hash of the version before ('' for the first one of a chain). */
  readonly previousHash?: string | undefined;
}

/**
 * Who last set each top-level key of a version's values, kept with every
 * version and carried forward from the one before by its changes, so that
 * reading it costs one version read however long the history is. Keys name
 * the version that last added or updated them; the versions named carry
 * their author and time, so the answer survives the pruning of old versions.
 */
export interface Blame {
  /** Key → the version that last set it. */
  readonly keys: Readonly<Record<string, number>>;
  /** Version (as text) → its author and time (epoch ms), for every version `keys` names. */
  readonly versions: Readonly<Record<string, { readonly author: string; readonly at: number }>>;
}

/** One stored version of a config. */
export interface ConfigVersion {
  readonly key: ConfigKey;
  readonly version: number;
  /** The values; `{}` when the version holds none (see `hasValues`). */
  readonly values: JsonObject;
  /**
   * False for a version that holds no values: a deletion (a tombstone), or a
   * schema set before the config's first values (or after its deletion).
   * Readers treat the config as not existing at such a version.
   */
  readonly hasValues: boolean;
  readonly audit: AuditEntry;
  /** Who last set each key (see `blame.ts`); absent on versions written before cfgd kept it. */
  readonly blame?: Blame | undefined;
}

/** A request to replace a config's values. */
export interface WriteRequest {
  readonly values: JsonObject;
  /** Compare-and-set: the version the config must be at; 0 = must not exist. */
  readonly expectedVersion?: number | undefined;
  readonly author: string;
  readonly now: Date;
}

/** What a write does to a config, decided from its current version (and schema) alone. */
export type WritePlan =
  | { readonly kind: 'unchanged'; readonly current: ConfigVersion }
  | {
      readonly kind: 'create';
      readonly next: ConfigVersion;
      /** Set when the version sets a schema: stored with it, in the same commit. */
      readonly schema?: ConfigSchema | undefined;
    };

/**
 * What a store's write did: the plan that took effect, or, for a request id
 * it had seen before (see `RequestRecord`), what the first request did.
 */
export type WriteOutcome = WritePlan | { readonly kind: 'replay'; readonly record: RequestRecord };

/** What a plan sees of a config: its current version and the schema in effect there. */
export type Planner = (current: ConfigVersion | undefined, schema: ConfigSchema | undefined) => WritePlan;

/**
 * Decides a write against the config's current version (undefined: it does
 * not exist) and the check of the schema in effect there (undefined: none).
 * Pure and deterministic, so a store may call it again when an optimistic
 * write has to retry. Throws ABORTED (`version-mismatch`) when the expected
 * version does not match, and INVALID_ARGUMENT (`SCHEMA_VIOLATION`, every
 * violation listed) when the values do not satisfy the schema.
 */
export function planWrite(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  request: WriteRequest,
  check?: SchemaCheck,
): WritePlan {
  expectVersion(request.expectedVersion, current);
  if (current?.hasValues === true && jsonEqual(current.values, request.values)) {
    return { kind: 'unchanged', current };
  }
  const schemaVersion = current?.audit.schemaVersion ?? 0;
  assertSatisfies(check, request.values, schemaVersion);
  return {
    kind: 'create',
    next: nextVersion(key, current, {
      values: request.values,
      operation: 'put',
      schemaVersion,
      author: request.author,
      now: request.now,
    }),
  };
}

/** What makes the version after the current one: its values (or none), its operation, who and when. */
export interface NextVersion {
  /** The new values; undefined: the version holds none (a deletion, or a schema before the first values). */
  readonly values: JsonObject | undefined;
  readonly operation: Operation;
  readonly schemaVersion: number;
  readonly author: string;
  readonly now: Date;
  readonly rollbackTo?: number | undefined;
}

/**
 * The version after `current` (undefined: the config's first): its values,
 * and its audit entry with the changes from the current values (none when
 * the current version holds none). Every plan that creates a version makes
 * it here.
 */
export function nextVersion(key: ConfigKey, current: ConfigVersion | undefined, next: NextVersion): ConfigVersion {
  const version = (current?.version ?? 0) + 1;
  const values = next.values ?? {};
  return {
    key,
    version,
    values,
    hasValues: next.values !== undefined,
    audit: {
      version,
      createdAt: next.now,
      author: next.author,
      changes: diff(current?.hasValues === true ? current.values : {}, values),
      operation: next.operation,
      schemaVersion: next.schemaVersion,
      ...(next.rollbackTo === undefined ? {} : { rollbackTo: next.rollbackTo }),
    },
  };
}

/** NOT_FOUND (`CONFIG_NOT_FOUND`): the config has never been written. */
export function configNotFound(key: ConfigKey): CfgdError {
  return new CfgdError('not-found', 'CONFIG_NOT_FOUND', `${resourceName(key)} does not exist`, {
    metadata: { resource: resourceName(key) },
  });
}

/**
 * Compare-and-set: throws ABORTED unless the config is at `expected` (undefined: no condition).
 * 0 means "does not exist yet", which a config whose latest version holds no values (a schema
 * set before its first values) also meets: create-if-absent works on it as Get reports it.
 */
export function expectVersion(expected: number | undefined, current: ConfigVersion | undefined): void {
  if (expected === undefined) return;
  const actual = current?.version ?? 0;
  if (expected === actual || (expected === 0 && current?.hasValues === false)) return;
  throw versionMismatch(expected, actual);
}

export function versionMismatch(expected: number, actual: number): CfgdError {
  const what = expected === 0 ? 'the config must not exist yet' : `expected version ${expected}`;
  const now = actual === 0 ? 'it does not exist' : `it is at version ${actual}`;
  return new CfgdError('version-mismatch', 'VERSION_MISMATCH', `${what}, but ${now}`, {
    metadata: { expected_version: String(expected), current_version: String(actual) },
  });
}

/** Throws INVALID_ARGUMENT naming `field` unless `value` is a whole number >= 0. */
export function validateVersion(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidField(field, 'VERSION_INVALID', `must be a whole number >= 0, got ${value}`);
  }
  return value;
}
