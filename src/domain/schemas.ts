import { CfgdError } from './errors.js';
import type { JsonObject } from './values.js';

/**
 * One version of a config's JSON Schema. Schema versions count 1, 2, 3 … per
 * config, apart from the config's versions: each schema change is also a
 * version of the config (see `planSetSchema` in `schema-change.ts`), and
 * `version` names it.
 */
export interface ConfigSchema {
  readonly schemaVersion: number;
  /** The config version whose commit set this schema. */
  readonly version: number;
  /** The JSON Schema document (draft 2020-12). */
  readonly schema: JsonObject;
  readonly createdAt: Date;
  readonly author: string;
}

/** One way values fail their schema. */
export interface Violation {
  /** A JSON pointer into the values (`/server/port`; `` for the values object itself). */
  readonly path: string;
  /** What is wrong there, readably (`must be integer`). */
  readonly description: string;
  /** The schema keyword that failed (`type`, `required`, `pattern` …). */
  readonly keyword: string;
}

/** Most violations one error lists; its metadata counts them all. */
export const MAX_VIOLATIONS = 100;

/** Every violation of `values` against one schema, or none. Pure: the same values, the same answer. */
export type SchemaCheck = (values: JsonObject) => readonly Violation[];

/** Throws INVALID_ARGUMENT (`SCHEMA_VIOLATION`, every violation listed under `field`) unless `values` satisfy `check`. */
export function assertSatisfies(
  check: SchemaCheck | undefined,
  values: JsonObject,
  schemaVersion: number,
  field = 'values',
): void {
  if (check === undefined) return;
  const violations = check(values);
  if (violations.length > 0) throw schemaViolation(violations, schemaVersion, field);
}

/** The violations as INVALID_ARGUMENT (`SCHEMA_VIOLATION`), each a field violation with its path into `field`. */
export function schemaViolation(violations: readonly Violation[], schemaVersion: number, field = 'values'): CfgdError {
  return new CfgdError(
    'invalid-argument',
    'SCHEMA_VIOLATION',
    `${field} do not satisfy schema version ${schemaVersion}${summary(violations)}`,
    {
      metadata: { schema_version: String(schemaVersion), violations: String(violations.length) },
      fieldViolations: listed(violations, field),
    },
  );
}

/** The current values fail a new schema: FAILED_PRECONDITION (`SCHEMA_INCOMPATIBLE`), listing each violation. */
export function schemaIncompatible(
  violations: readonly Violation[],
  schemaVersion: number,
  version: number,
): CfgdError {
  return new CfgdError(
    'failed-precondition',
    'SCHEMA_INCOMPATIBLE',
    `the values of version ${version} do not satisfy the new schema${summary(violations)}; ` +
      'send migration_values that do, to change both at once',
    {
      metadata: {
        version: String(version),
        schema_version: String(schemaVersion),
        violations: String(violations.length),
      },
      fieldViolations: listed(violations, 'values'),
    },
  );
}

export function schemaVersionMismatch(expected: number, actual: number): CfgdError {
  const what = expected === 0 ? 'the config must have no schema yet' : `expected schema version ${expected}`;
  const now = actual === 0 ? 'it has none' : `it is at schema version ${actual}`;
  return new CfgdError('version-mismatch', 'SCHEMA_VERSION_MISMATCH', `${what}, but ${now}`, {
    metadata: { expected_schema_version: String(expected), current_schema_version: String(actual) },
  });
}

function listed(violations: readonly Violation[], field: string): { field: string; description: string }[] {
  return violations.slice(0, MAX_VIOLATIONS).map((v) => ({ field: `${field}${v.path}`, description: v.description }));
}

function summary(violations: readonly Violation[]): string {
  const first = violations[0];
  if (first === undefined) return '';
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
  return `: ${first.path === '' ? '(the object)' : first.path} ${first.description}${more}`;
}
