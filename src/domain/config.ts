import { diff, type Change } from './changes.js';
import { CfgdError, invalidField } from './errors.js';
import type { ConfigKey } from './names.js';
import { jsonEqual, type JsonObject } from './values.js';

/** The audit entry of one version: when, by whom and what changed. */
export interface AuditEntry {
  readonly version: number;
  readonly createdAt: Date;
  readonly author: string;
  readonly changes: readonly Change[];
}

/** One stored version of a config. */
export interface ConfigVersion {
  readonly key: ConfigKey;
  readonly version: number;
  readonly values: JsonObject;
  readonly audit: AuditEntry;
}

/** A request to replace a config's values. */
export interface WriteRequest {
  readonly values: JsonObject;
  /** Compare-and-set: the version the config must be at; 0 = must not exist. */
  readonly expectedVersion?: number | undefined;
  readonly author: string;
  readonly now: Date;
}

/** What a write does to a config, decided from its current version alone. */
export type WritePlan =
  | { readonly kind: 'unchanged'; readonly current: ConfigVersion }
  | { readonly kind: 'create'; readonly next: ConfigVersion };

/**
 * Decides a write against the config's current version (undefined: it does
 * not exist). Pure and deterministic, so a store may call it again when an
 * optimistic write has to retry. Throws ABORTED (`version-mismatch`) when the
 * expected version does not match.
 */
export function planWrite(key: ConfigKey, current: ConfigVersion | undefined, request: WriteRequest): WritePlan {
  const currentVersion = current?.version ?? 0;
  if (request.expectedVersion !== undefined && request.expectedVersion !== currentVersion) {
    throw versionMismatch(request.expectedVersion, currentVersion);
  }
  if (current !== undefined && jsonEqual(current.values, request.values)) {
    return { kind: 'unchanged', current };
  }
  const version = currentVersion + 1;
  return {
    kind: 'create',
    next: {
      key,
      version,
      values: request.values,
      audit: {
        version,
        createdAt: request.now,
        author: request.author,
        changes: diff(current?.values ?? {}, request.values),
      },
    },
  };
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
