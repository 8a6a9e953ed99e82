import type { ConfigKey, ConfigVersion, RequestIdentity, RequestRecord, WritePlan } from '../../domain/index.js';

/** A version as `insertVersion` takes it, in the order of `VERSION_COLUMNS`. */
export type VersionRow = readonly [
  version: number,
  valuesJson: string,
  changesJson: string,
  author: string,
  createdAt: number,
  operation: string,
  schemaVersion: number,
  hasValues: 0 | 1,
  rollbackTo: number | null,
  hash: string | null,
  previousHash: string | null,
  blameJson: string | null,
];

/** A schema version as `insertSchema` takes it, in the order of `SCHEMA_COLUMNS`. */
export type SchemaRow = readonly [
  schemaVersion: number,
  version: number,
  schemaJson: string,
  author: string,
  createdAt: number,
];

/**
 * A write decided away from the writer (in a worker process), as the rows to
 * store: the writer stores them only if the config's head is still the
 * version the plan saw and the request id (if any) is still unseen, all in its
 * transaction. The rows are encoded where the plan ran, so the one writer
 * only inserts them.
 */
export interface PreparedWrite {
  readonly key: ConfigKey;
  /** The head version the plan saw; 0 when the config did not exist. */
  readonly expected: number;
  /** The version the plan created; absent when it changed nothing. */
  readonly version?: VersionRow | undefined;
  readonly schema?: SchemaRow | undefined;
  /** The request id to record with what the plan did. */
  readonly request?: RequestRecord | undefined;
}

/** What the writer did with a prepared write. */
export type PreparedResult =
  | { readonly kind: 'applied' }
  /** The head moved since the plan read it: nothing was written; read and plan again. */
  | { readonly kind: 'conflict' }
  | { readonly kind: 'replay'; readonly record: RequestRecord };

/** The rows of a plan's decision, made against `current` (undefined: the config did not exist). */
export function prepareWrite(
  key: ConfigKey,
  current: ConfigVersion | undefined,
  decision: WritePlan,
  request: RequestIdentity | undefined,
): PreparedWrite {
  const record: RequestRecord | undefined =
    request === undefined
      ? undefined
      : decision.kind === 'create'
        ? { ...request, version: decision.next.version, changed: true }
        : { ...request, version: decision.current.version, changed: false };
  if (decision.kind !== 'create') return { key, expected: current?.version ?? 0, request: record };
  const { next, schema } = decision;
  return {
    key,
    expected: current?.version ?? 0,
    version: [
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
    ],
    schema:
      schema === undefined
        ? undefined
        : [
            schema.schemaVersion,
            schema.version,
            JSON.stringify(schema.schema),
            schema.author,
            schema.createdAt.getTime(),
          ],
    request: record,
  };
}
